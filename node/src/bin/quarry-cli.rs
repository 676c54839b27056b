//! `quarry-cli`, the command-line RPC client of `quarryd`. See `quarry-cli --help`.

use clap::Parser;
use quarry_node::cli::{run, Args};

fn main() -> std::process::ExitCode {
    quarry_node::cli::exit_quietly_on_closed_pipe();
    std::process::ExitCode::from(run(Args::parse()))
}
