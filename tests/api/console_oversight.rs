//! Console browser tests: console_oversight (issue 20; being built).
