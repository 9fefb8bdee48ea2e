//! Console browser tests: console_systems (issue 20; being built).
