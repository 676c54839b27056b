//! `quarry-cli`, the command-line RPC client of `quarryd`. See `quarry-cli --help`.

use clap::Parser;
use quarry_rpc::cli::{run, Args};

fn main() -> std::process::ExitCode {
    quarry_rpc::cli::exit_quietly_on_closed_pipe();
    std::process::ExitCode::from(run(Args::parse()))
}
