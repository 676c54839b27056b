//! `quarryd`, the Quarry node daemon. See `quarryd --help`.

use clap::Parser;
use quarry_node::daemon::{run, Args, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let settings = match Settings::resolve(args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("quarryd: {}", quarry_rpc::cli::describe(&error));
            return std::process::ExitCode::from(2);
        }
    };
    let filter = match EnvFilter::try_new(&settings.log_level) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!(
                "quarryd: invalid --log-level '{}': {error}",
                settings.log_level
            );
            return std::process::ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("quarryd: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", quarry_rpc::cli::describe(&error));
            eprintln!("quarryd: {}", quarry_rpc::cli::describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
