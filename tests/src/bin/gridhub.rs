//! The `gridhub` binary, built inside this test package so black-box tests can run it through
//! `CARGO_BIN_EXE_gridhub`. Same entry point as `hub/src/main.rs`.

fn main() -> std::process::ExitCode {
    gridhub::cli::main()
}
