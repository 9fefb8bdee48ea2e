//! The `gridhub` binary under another name (`gridhub-under-test`), built inside this test package
//! so black-box tests can run it through `CARGO_BIN_EXE_gridhub-under-test` without colliding with
//! the hub's own `target/*/gridhub`. Same entry point as `hub/src/main.rs`.

/// mimalloc: the hub allocates many small buffers per request (ciphertexts, JSON values).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gridhub::cli::main()
}
