//! `landsby-notification`: the notification service on its own.

fn main() -> std::process::ExitCode {
    landsby_platform::cli::service_main(landsby_notification::SERVICE)
}
