//! The `forgehand` binary: everything is in the library; see `cli`.

fn main() -> std::process::ExitCode {
    forgehand::cli::main()
}
