//! `landsby-case`: the case service on its own.

fn main() -> std::process::ExitCode {
    landsby_platform::cli::service_main(landsby_case::SERVICE)
}
