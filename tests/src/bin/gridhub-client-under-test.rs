//! The `gridhub-client` binary (`connectors/src/bin/gridhub-client`) built from the same source
//! inside this test package, so black-box tests can run it through
//! `CARGO_BIN_EXE_gridhub-client-under-test` (Cargo exposes only the binaries of the package
//! under test, and `cargo test --workspace` then builds it before the tests run).

#[path = "../../../connectors/src/bin/gridhub-client/main.rs"]
mod gridhub_client;

fn main() -> std::process::ExitCode {
    gridhub_client::main()
}
