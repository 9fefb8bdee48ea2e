//! The `gridhub` binary: everything happens in `gridhub::cli::main`.

/// mimalloc: the hub allocates many small buffers per request (ciphertexts, JSON values).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gridhub::cli::main()
}
