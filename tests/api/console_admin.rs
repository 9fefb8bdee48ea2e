//! Console browser tests: console_admin (issue 20; being built).
