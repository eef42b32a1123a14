//! The `atlasgate` binary: parse the command line, run the library.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = atlasgate::cli::Cli::parse();
    atlasgate::cli::main(cli)
}
