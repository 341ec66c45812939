//! `bienvivre` binary: parse arguments, run, map errors to exit codes
//! (0 ok, 1 data or run error, 2 usage or pipeline-file error).

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::main(cli).into()
}
