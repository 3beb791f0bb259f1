//! `hcrm`: one binary for every HCRM service. See `hcrm --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = hcrm::cli::Cli::parse();
    match hcrm::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hcrm: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
