-- Ledger signing-key rotation (issue 22). `ledger_head.key_id` names the key (the hex C2SP key
-- hash) that signs checkpoints now; a checkpoint is stored only by compare-and-swap on it, so a
-- process that has not learnt of a rotation yet cannot publish a checkpoint signed by the
-- retired key. NULL until the first hub process that opens this ledger claims it for its key.
ALTER TABLE ledger_head ADD COLUMN key_id TEXT;

-- Each rotation's transition statement (tlog `keychain`): a signed note, signed by the old key
-- and the new one, naming both, and the size and root of the newest checkpoint the old key
-- signed (it signs nothing larger). Oldest first by `position`; verifiers follow the chain from
-- whichever key they pinned.
CREATE TABLE ledger_key_transitions (
    position   INTEGER PRIMARY KEY,
    old_key_id TEXT NOT NULL UNIQUE,
    new_key_id TEXT NOT NULL UNIQUE,
    size       BIGINT NOT NULL,
    note       TEXT NOT NULL,
    time_ms    BIGINT NOT NULL
);
