//! The `coordinator` binary: parse the command line, call the library, map the outcome to an exit
//! code (0 success, 1 some packages or upstreams failed, 2 the build could not run).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init("info");
    let cli = coordinator::cli::Cli::parse();
    match coordinator::cli::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
