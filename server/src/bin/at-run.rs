//! The `at-run` command: sign in, deploy bundles, manage secrets. See `server::cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::main().await
}
