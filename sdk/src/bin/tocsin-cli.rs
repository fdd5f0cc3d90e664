//! `tocsin-cli`: see `tocsin-cli --help`. The logic lives in `tocsin_sdk::cli`.

fn main() -> std::process::ExitCode {
    tocsin_sdk::cli::main()
}
