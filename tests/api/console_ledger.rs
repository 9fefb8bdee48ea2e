//! Console browser tests: console_ledger (issue 20; being built).
