//! Departments as witnesses (issue 21): an admin registers department clients' cosigner keys,
//! each client cosigns a checkpoint (C2SP tlog-cosignature/v1), the hub serves the checkpoint
//! with its own line first and the witnesses' after, every line checks out under an Ed25519
//! implementation other than the hub's (ed25519-dalek, message rebuilt here from the spec), and
//! `gridhub audit verify --witness … --min-witnesses K` passes or fails on the count. Every
//! refusal has its code and its ledger entry.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gridhub_tests::mtls::DeptClient;
use gridhub_tests::{Backend, TestApp, error_code, spawn_app};
use serde_json::{Value, json};
use tlog::cosignature::{CosignatureVerifier, Cosigner, verify_witnesses};
use tlog::note::Verifier;

const BIN: &str = env!("CARGO_BIN_EXE_gridhub-under-test");
const TS: u64 = 1_765_000_000;

fn cosigner(name: &str) -> Cosigner {
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    Cosigner::from_pkcs8(name, pkcs8.as_ref()).unwrap()
}

/// The text of a signed note and its signature lines.
fn split_note(note: &str) -> (String, Vec<String>) {
    let (text, sigs) = note.rsplit_once("\n\n").unwrap();
    (
        format!("{text}\n"),
        sigs.lines().map(str::to_owned).collect(),
    )
}

/// Checked by hand from c2sp.org/tlog-cosignature with ed25519-dalek: the line is
/// `— <name> base64(key hash ‖ u64 BE timestamp ‖ signature)`, the key hash is
/// SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4], the message `cosignature/v1\ntime <t>\n` ‖ text.
fn check_independently(text: &str, line: &str, name: &str, public_key: [u8; 32]) -> u64 {
    use ed25519_dalek::Verifier as _;
    let rest = line.strip_prefix("\u{2014} ").unwrap();
    let (got_name, b64) = rest.split_once(' ').unwrap();
    assert_eq!(got_name, name);
    let blob = B64.decode(b64).unwrap();
    assert_eq!(blob.len(), 76);
    let mut hashed = format!("{name}\n").into_bytes();
    hashed.push(0x04);
    hashed.extend_from_slice(&public_key);
    let digest = ring::digest::digest(&ring::digest::SHA256, &hashed);
    assert_eq!(blob[..4], digest.as_ref()[..4]);
    let timestamp = u64::from_be_bytes(blob[4..12].try_into().unwrap());
    let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public_key).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&blob[12..]).unwrap();
    key.verify(message.as_bytes(), &signature).unwrap();
    // And a changed message does not verify.
    assert!(
        key.verify(format!("{message}x").as_bytes(), &signature)
            .is_err()
    );
    timestamp
}

struct Witness {
    client: DeptClient,
    token: String,
    cosigner: Cosigner,
}

async fn checkpoint(app: &TestApp, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/v1/audit/checkpoint{query}")))
        .send()
        .await
        .unwrap()
}

async fn post_cosignature(app: &TestApp, w: &Witness, text: &str, line: &str) -> reqwest::Response {
    w.client
        .http
        .post(app.url("/v1/audit/cosignatures"))
        .bearer_auth(&w.token)
        .json(&json!({"checkpoint": text, "cosignature": line}))
        .send()
        .await
        .unwrap()
}

async fn register_witnesses(app: &TestApp) -> Vec<Witness> {
    let mut out = Vec::new();
    for dept in ["civil-affairs", "health", "housing"] {
        app.create_department(dept, &["330110"]).await;
        let client = app.register_client(&format!("{dept}-sys"), dept).await;
        let cosigner = cosigner(&format!("{dept}.example/witness"));
        let resp = app
            .put_json(
                &app.admin_token,
                &format!("/v1/admin/clients/{}/witness", client.id),
                &json!({"vkey": cosigner.vkey()}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"client": client.id, "key_name": cosigner.name(), "vkey": cosigner.vkey()})
        );
        let token = app.client_token(&client).await;
        out.push(Witness {
            client,
            token,
            cosigner,
        });
    }
    out
}

async fn cli(app: &TestApp, witnesses: &[String], min: &'static str) -> (bool, String) {
    let refs: Vec<String> = witnesses.to_vec();
    let (base, dpo, ca) = (
        app.base.clone(),
        app.dpo_token.clone(),
        app.data_dir.path().to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let shim = CliTarget { base, dpo, ca };
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        shim.run(&refs, min)
    })
    .await
    .unwrap()
}

/// What the CLI needs of a test app, movable to a blocking thread.
struct CliTarget {
    base: String,
    dpo: String,
    ca: std::path::PathBuf,
}

impl CliTarget {
    fn run(&self, witnesses: &[&str], min: &str) -> (bool, String) {
        let mut cmd = Command::new(BIN);
        cmd.args(["audit", "verify", "--url", &self.base, "--token", &self.dpo])
            .arg("--ca")
            .arg(self.ca.join("pki/ca.pem"));
        for w in witnesses {
            cmd.args(["--witness", w]);
        }
        if !min.is_empty() {
            cmd.args(["--min-witnesses", min]);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

async fn departments_witness_the_checkpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let witnesses = register_witnesses(&app).await;
    let vkeys: Vec<String> = witnesses.iter().map(|w| w.cosigner.vkey()).collect();

    // Any authenticated caller lists the witness keys: an admin and a department client.
    let listed: Value = app
        .get(&app.admin_token, "/v1/audit/witnesses")
        .await
        .json()
        .await
        .unwrap();
    let listed = listed["witnesses"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["client"], "civil-affairs-sys");
    assert_eq!(listed[0]["department"], "civil-affairs");
    assert_eq!(listed[0]["vkey"], vkeys[0].as_str());
    let by_client = witnesses[1]
        .client
        .http
        .get(app.url("/v1/audit/witnesses"))
        .bearer_auth(&witnesses[1].token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_client.status(), 200);
    let anonymous = app
        .client
        .get(app.url("/v1/audit/witnesses"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The checkpoint the witnesses see (public: a department client reads it as anyone does).
    let note = checkpoint(&app, "").await.text().await.unwrap();
    let (text, lines) = split_note(&note);
    assert_eq!(lines.len(), 1, "no cosignature yet: {note}");
    let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
    let public: Value = app
        .client
        .get(app.url("/v1/audit/public-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = Verifier::from_vkey(public["verifier"].as_str().unwrap()).unwrap();
    let log_line = lines[0].clone();

    // One witness: k = 2 is not met, and the CLI says so.
    let first = witnesses[0].cosigner.cosign(&text, TS).unwrap();
    let resp = post_cosignature(&app, &witnesses[0], &text, &first).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"size": size, "key_name": "civil-affairs.example/witness", "timestamp": TS})
    );
    // Idempotent: the same line again answers the same, 200.
    let again = post_cosignature(&app, &witnesses[0], &text, &first).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), body);
    let (ok, out) = cli(&app, &vkeys, "2").await;
    assert!(!ok, "one witness of two required must fail: {out}");
    assert!(
        out.contains("1 valid witness cosignature(s) found, 2 required"),
        "{out}"
    );
    assert!(
        out.contains(&vkeys[2]),
        "the expected keys are named: {out}"
    );
    let resp = checkpoint(&app, "?min_cosignatures=2").await;
    assert_eq!(error_code(resp).await.1, "not_found");

    // Two, then three witnesses.
    for w in &witnesses[1..] {
        let line = w.cosigner.cosign(&text, TS + 1).unwrap();
        let resp = post_cosignature(&app, w, &text, &line).await;
        assert_eq!(resp.status(), 201);
        if w.client.id == "health-sys" {
            let (ok, out) = cli(&app, &vkeys, "2").await;
            assert!(ok, "two of three witnesses: {out}");
            assert!(out.contains("ledger intact"), "{out}");
        }
    }
    let (ok, out) = cli(&app, &vkeys, "2").await;
    assert!(ok, "three witnesses, two required: {out}");
    let (ok, out) = cli(&app, &vkeys, "").await;
    assert!(ok, "all three by default: {out}");

    // The served checkpoint: the hub's line first, then the three witnesses' lines.
    let resp = checkpoint(&app, "?min_cosignatures=3").await;
    assert_eq!(resp.status(), 200);
    let served = resp.text().await.unwrap();
    let (served_text, served_lines) = split_note(&served);
    assert_eq!(served_text, text);
    assert_eq!(served_lines.len(), 4, "{served}");
    assert_eq!(served_lines[0], log_line);
    for (w, line) in witnesses.iter().zip(&served_lines[1..]) {
        let ts = check_independently(&text, line, w.cosigner.name(), w.cosigner.public_key());
        assert!(ts == TS || ts == TS + 1);
    }
    let verifiers: Vec<CosignatureVerifier> = vkeys
        .iter()
        .map(|v| CosignatureVerifier::from_vkey(v).unwrap())
        .collect();
    assert_eq!(
        verify_witnesses(&served, &log, &verifiers, 3).unwrap(),
        text
    );
    // The newest checkpoint still serves the cosignatures of its own size only (the log grew
    // with the cosignatures' entries, so it is a newer one without any yet).
    let newest = checkpoint(&app, "").await.text().await.unwrap();
    let (newest_text, newest_lines) = split_note(&newest);
    if newest_text == text {
        assert_eq!(newest_lines.len(), 4);
    } else {
        assert_eq!(newest_lines.len(), 1);
    }

    refusals_are_coded_and_audited(&app, &witnesses, &text).await;
    admin_changes_are_checked_and_audited(&app, &witnesses).await;
}

async fn refusals_are_coded_and_audited(app: &TestApp, witnesses: &[Witness], text: &str) {
    let civil = &witnesses[0];
    let expect = |resp: reqwest::Response,
                  status: u16,
                  code: &'static str,
                  field: Option<&'static str>| async move {
        let (got, got_code, body) = error_code(resp).await;
        assert_eq!((got, got_code.as_str()), (status, code), "{body}");
        if let Some(field) = field {
            assert_eq!(body["error"]["details"][0]["field"], field, "{body}");
        }
    };
    // A key the hub never registered for this client.
    let stranger = cosigner("civil-affairs.example/witness");
    let line = stranger.cosign(text, TS).unwrap();
    let resp = post_cosignature(app, civil, text, &line).await;
    expect(resp, 422, "validation_failed", Some("cosignature")).await;
    // A forged line: the registered key's line with one signature bit flipped.
    let good = civil.cosigner.cosign(text, TS + 2).unwrap();
    let (head, b64) = good.rsplit_once(' ').unwrap();
    let mut blob = B64.decode(b64).unwrap();
    blob[40] ^= 1;
    let forged = format!("{head} {}", B64.encode(blob));
    let resp = post_cosignature(app, civil, text, &forged).await;
    expect(resp, 422, "validation_failed", Some("cosignature")).await;
    let resp = post_cosignature(app, civil, text, "not a line").await;
    expect(resp, 422, "validation_failed", Some("cosignature")).await;
    // A checkpoint the hub never signed: same size, another root; and a size never reached.
    let mut other: Vec<&str> = text.lines().collect();
    let root = B64.encode([9u8; 32]);
    other[2] = &root;
    let other = format!("{}\n", other.join("\n"));
    let line = civil.cosigner.cosign(&other, TS).unwrap();
    let resp = post_cosignature(app, civil, &other, &line).await;
    expect(resp, 404, "not_found", None).await;
    let far = format!("{}\n999999\n{root}\n", text.lines().next().unwrap());
    let line = civil.cosigner.cosign(&far, TS).unwrap();
    let resp = post_cosignature(app, civil, &far, &line).await;
    expect(resp, 404, "not_found", None).await;
    let resp = post_cosignature(app, civil, "not a checkpoint", &good).await;
    expect(resp, 422, "validation_failed", Some("checkpoint")).await;
    // A client without a witness key, and a user.
    app.create_department("planning", &["330110"]).await;
    let plain = app.register_client("planning-sys", "planning").await;
    let token = app.client_token(&plain).await;
    let outsider = Witness {
        client: plain,
        token,
        cosigner: cosigner("planning.example/witness"),
    };
    let line = outsider.cosigner.cosign(text, TS).unwrap();
    let resp = post_cosignature(app, &outsider, text, &line).await;
    expect(resp, 403, "forbidden", None).await;
    let resp = app
        .post(
            &app.admin_token,
            "/v1/audit/cosignatures",
            &json!({"checkpoint": text, "cosignature": good}),
        )
        .await;
    expect(resp, 403, "forbidden", None).await;
    // Eight refusals, each a deny entry of `audit.cosign`; three accepted lines (and one
    // repeat) are allow entries.
    let denied: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?action=audit.cosign&decision=deny&limit=100",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(denied["entries"].as_array().unwrap().len(), 8, "{denied}");
    let allowed: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?action=audit.cosign&decision=allow&limit=100",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(allowed["entries"].as_array().unwrap().len(), 4, "{allowed}");
}

async fn admin_changes_are_checked_and_audited(app: &TestApp, witnesses: &[Witness]) {
    let path = format!("/v1/admin/clients/{}/witness", witnesses[2].client.id);
    // A plain signed-note key (alg 0x01) is not a cosigner key.
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let plain = gridhub::ledger::note::NoteSigner::from_pkcs8("w", pkcs8.as_ref())
        .unwrap()
        .verifier_key();
    let resp = app
        .put_json(&app.admin_token, &path, &json!({"vkey": plain}))
        .await;
    let (status, code, body) = error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "validation_failed"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["field"], "vkey");
    // A key another client holds is refused.
    let resp = app
        .put_json(
            &app.admin_token,
            &path,
            &json!({"vkey": witnesses[0].cosigner.vkey()}),
        )
        .await;
    assert_eq!(error_code(resp).await.1, "conflict");
    // Only who may write clients.
    let resp = app
        .put_json(
            &app.worker_token,
            &path,
            &json!({"vkey": witnesses[2].cosigner.vkey()}),
        )
        .await;
    assert_eq!(error_code(resp).await.1, "forbidden");
    let resp = app.delete(&app.dpo_token, &path).await;
    assert_eq!(error_code(resp).await.1, "forbidden");
    let resp = app
        .put_json(
            &app.admin_token,
            "/v1/admin/clients/nobody/witness",
            &json!({"vkey": witnesses[2].cosigner.vkey()}),
        )
        .await;
    assert_eq!(error_code(resp).await.1, "not_found");
    // Removed: listed no more, its cosignatures refused; removing again is 404.
    assert_eq!(app.delete(&app.admin_token, &path).await.status(), 204);
    let resp = app.delete(&app.admin_token, &path).await;
    assert_eq!(error_code(resp).await.1, "not_found");
    let listed: Value = app
        .get(&app.admin_token, "/v1/audit/witnesses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["witnesses"].as_array().unwrap().len(), 2);
    let set: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?action=client.witness.set&decision=allow&limit=100",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(set["entries"].as_array().unwrap().len(), 3, "{set}");
    let removed: Value = app
        .get(
            &app.dpo_token,
            "/v1/audit/entries?action=client.witness.remove&decision=allow&limit=100",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(removed["entries"].as_array().unwrap().len(), 1, "{removed}");
}

gridhub_tests::on_both_backends!(departments_witness_the_checkpoint);
