// Gridhub console: the one script of the console (the CSP allows no inline code).
//
// Inclusion proofs are checked here, in the officer's browser, with WebCrypto only: the leaf
// hash of the entry's canonical text (RFC 9162: SHA-256(0x00 || entry)), the walk of the
// inclusion proof up to the root (RFC 9162 §2.1.3.2), and the Ed25519 signature of the signed
// checkpoint (C2SP signed note) that names that root. The ledger key is pinned in this
// browser the first time it is seen (localStorage): a later answer under another key fails,
// unless the ledger's key transition statements (each signed by the old key and the new) lead
// from the pinned key to it; then the pin moves to the new key.
"use strict";

(function () {
  const utf8 = (s) => new TextEncoder().encode(s);
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function same(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // RFC 9162 §2.1.3.2: does `proof` take the leaf at `index` of a tree of `size` to `root`?
  async function verifyInclusion(index, size, leaf, proof, root) {
    if (index >= size) return false;
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 && same(r, root);
  }

  // C2SP signed note: the text up to the blank line is signed; then "— name base64" lines.
  function parseNote(text) {
    const split = text.indexOf("\n\n");
    if (split < 0) throw new Error("not a signed note");
    const body = text.slice(0, split + 1);
    const signatures = text
      .slice(split + 2)
      .split("\n")
      .filter((line) => line.startsWith("\u2014 "))
      .map((line) => {
        const [name, sig] = line.slice(2).split(" ");
        return { name, bytes: b64(sig) };
      });
    return { body, signatures };
  }

  // A C2SP checkpoint: a signed note whose text is `origin\nsize\nbase64(root)\n`.
  function parseCheckpoint(text) {
    const note = parseNote(text);
    const [origin, size, root] = note.body.split("\n");
    return { ...note, origin, size: Number(size), root: b64(root) };
  }

  // A C2SP verifier key `name+hash+base64(0x01 ‖ key)` (the base64 may hold '+').
  function parseVkey(vkey) {
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    const raw = b64(vkey.slice(second + 1));
    if (first < 1 || second < 0 || raw.length !== 33 || raw[0] !== 1) {
      throw new Error("bad verifier key");
    }
    return { name: vkey.slice(0, first), publicKey: raw.slice(1) };
  }

  // Is `note` signed by the key `vkey` (a signature line of its name and key hash that verifies)?
  async function signedBy(note, vkey) {
    const { name, publicKey } = parseVkey(vkey);
    const keyHash = (await sha256(concat(utf8(name + "\n"), Uint8Array.of(1), publicKey))).slice(
      0,
      4,
    );
    const line = note.signatures.find((s) => s.name === name && same(s.bytes.slice(0, 4), keyHash));
    if (!line) return false;
    const verifier = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
    return crypto.subtle.verify({ name: "Ed25519" }, verifier, line.bytes.slice(4), utf8(note.body));
  }

  // The ledger's keys from its key transition statements (tlog keychain: each names the old key
  // and the new one and the size at the change, and is signed by both), oldest first, as
  // [{vkey, until}] (`until`: the largest checkpoint a retired key may sign). Null when a
  // statement does not verify or the statements do not form one chain ending at `current`.
  async function keyChain(transitions, current) {
    const chain = [];
    for (const text of transitions || []) {
      const note = parseNote(text);
      const lines = note.body.split("\n");
      const field = (i, label) =>
        lines[i] && lines[i].startsWith(label + " ") ? lines[i].slice(label.length + 1) : null;
      const [from, to, size] = [field(2, "old"), field(3, "new"), field(4, "size")];
      if (lines[0] !== "gridhub-key-transition/v1" || !from || !to || !size) return null;
      if (chain.length > 0 && chain[chain.length - 1].vkey !== from) return null;
      if (!(await signedBy(note, from)) || !(await signedBy(note, to))) return null;
      if (chain.length === 0) chain.push({ vkey: from, until: Infinity });
      chain[chain.length - 1].until = Number(size);
      chain.push({ vkey: to, until: Infinity });
    }
    if (chain.length === 0) chain.push({ vkey: current, until: Infinity });
    return chain[chain.length - 1].vkey === current ? chain : null;
  }

  // Is the checkpoint `note` signed by a key of `chain` within that key's span?
  async function checkpointSigned(note, chain) {
    for (const key of chain.slice().reverse()) {
      if (note.size <= key.until && (await signedBy(note, key.vkey))) return true;
    }
    return false;
  }

  async function fetchOk(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response;
  }

  async function verifyEntry(section) {
    const status = section.querySelector("[data-proof-status]");
    const report = (result, text, detail) => {
      section.dataset.result = result;
      status.textContent = detail ? text + " (" + detail + ")" : text;
    };
    report("busy", section.dataset.busy);
    try {
      const index = Number(section.dataset.index);
      const canonical = document.getElementById(section.dataset.canonical).textContent;
      const [noteText, key] = await Promise.all([
        fetchOk("/v1/audit/checkpoint").then((r) => r.text()),
        fetchOk("/v1/audit/public-key").then((r) => r.json()),
      ]);
      // The pinned key must be the ledger's key now, or one its transitions lead from.
      const pinned = localStorage.getItem("gridhub.ledger-key");
      const chain = await keyChain(key.transitions, key.verifier);
      if (!chain || (pinned && !chain.some((k) => k.vkey === pinned))) {
        report("failed", section.dataset.keyChanged);
        return;
      }
      const note = parseCheckpoint(noteText);
      if (!(await checkpointSigned(note, chain))) {
        report("failed", section.dataset.fail, "checkpoint signature");
        return;
      }
      const proof = await fetchOk(
        "/v1/audit/proofs/inclusion?index=" + index + "&size=" + note.size,
      ).then((r) => r.json());
      const leaf = await sha256(concat(Uint8Array.of(0), utf8(canonical)));
      const included = await verifyInclusion(
        index,
        note.size,
        leaf,
        proof.proof.map(b64),
        note.root,
      );
      if (!included) {
        report("failed", section.dataset.fail, "inclusion proof");
        return;
      }
      localStorage.setItem("gridhub.ledger-key", key.verifier);
      section.querySelector("[data-checkpoint]").textContent =
        note.origin + " · " + note.size + " · " + hex(note.root).slice(0, 16) + "…";
      report("verified", section.dataset.ok);
    } catch (e) {
      report("failed", section.dataset.fail, e.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("[data-print]")) {
      button.addEventListener("click", () => window.print());
    }
    for (const section of document.querySelectorAll("[data-proof]")) {
      const button = section.querySelector("button");
      button.addEventListener("click", () => verifyEntry(section));
      verifyEntry(section);
    }
  });
})();

// --- Admin: systems and the catalog: the "copy the certificate" button (clients.rs). Without
// a script the button stays hidden and the download link and the visible PEM remain.
(function () {
  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("button[data-copy]")) {
      const source = document.getElementById(button.dataset.copy);
      const status = button.parentElement.querySelector(".copy-status");
      if (!source || !navigator.clipboard) continue;
      button.hidden = false;
      button.addEventListener("click", async () => {
        await navigator.clipboard.writeText(source.textContent);
        if (status) status.textContent = button.dataset.copied;
      });
    }
  });
})();

// --- Ledger and keys: the verify button (ledger.rs). The ledger is checked range by range by
// the hub (POST /console/ledger/verify, the code of `gridhub audit verify`); this drives the
// ranges in order from 0, each starting where the last ended, shows the progress and names
// the first bad entry. Texts come from the section's data attributes.
(function () {
  async function verifyLedger(section, button) {
    const bar = section.querySelector("progress");
    const status = section.querySelector("[data-verify-status]");
    const chunk = Number(section.dataset.chunk) || 50000;
    const target = Math.max(Number(section.dataset.target) || 0, 1);
    const show = (result, text) => {
      section.dataset.result = result;
      status.textContent = text;
    };
    const advance = (to) => {
      bar.max = Math.max(target, to, 1);
      bar.value = Math.min(to, bar.max);
      bar.textContent = Math.floor((100 * bar.value) / bar.max) + " %";
    };
    button.disabled = true;
    advance(0);
    show("busy", section.dataset.busy);
    let from = 0;
    let ranges = 0;
    try {
      for (;;) {
        const body = new URLSearchParams({
          csrf: section.dataset.csrf,
          from: String(from),
          to: String(from + chunk),
        });
        const response = await fetch("/console/ledger/verify", {
          method: "POST",
          body,
          credentials: "same-origin",
          headers: { accept: "application/json" },
        });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const answer = await response.json();
        ranges += 1;
        section.dataset.ranges = String(ranges);
        if (!answer.ok) {
          const index = answer.failure && answer.failure.index;
          section.dataset.badIndex = index === undefined || index === null ? "" : String(index);
          show("failed", section.dataset.fail + " " + section.dataset.badIndex +
            " (" + (answer.failure ? answer.failure.problem : "") + ")");
          return;
        }
        advance(answer.to);
        if (answer.done) {
          advance(bar.max);
          section.dataset.checked = String(answer.to);
          show("verified", section.dataset.ok + " " + answer.to);
          return;
        }
        if (answer.to <= from) throw new Error("no progress at entry " + from);
        from = answer.to;
      }
    } catch (e) {
      show("error", section.dataset.error + " " + e.message);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const section of document.querySelectorAll("[data-verify]")) {
      const button = section.querySelector("[data-verify-start]");
      button.addEventListener("click", () => verifyLedger(section, button));
    }
  });
})();
