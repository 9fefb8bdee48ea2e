//! The `gridhub` binary: everything happens in `gridhub::cli::main`.

fn main() -> std::process::ExitCode {
    gridhub::cli::main()
}
