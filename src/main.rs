//! The `alinea` binary: the only place where errors become `anyhow` reports.

fn main() -> std::process::ExitCode {
    alinea::cli::main()
}
