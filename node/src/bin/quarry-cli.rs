//! `quarry-cli`, the command-line RPC client of `quarryd`. See `quarry-cli --help`.

use clap::Parser;
use quarry_node::cli::{run, Args};

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run(Args::parse()))
}
