//! The `isobench` binary: parse flags, dispatch, print the whole error chain, exit.

use clap::Parser;
use isobench::cli::{self, ExitCode};

fn main() {
    // The OCI runtimes exec isobench itself as the runner inside their containers.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(isobench::env::oci::runner::SUBCOMMAND) {
        isobench::env::oci::runner::runner_main(&args[2..]);
    }
    let parsed = cli::args::Cli::parse();
    let code = match cli::dispatch(parsed) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("isobench: error: {}", cli::describe(&err));
            if err.chain().any(|e| {
                e.is::<isobench::plan::PlanError>()
                    || e.is::<isobench::results::ReadError>()
                    || e.is::<isobench::results::LoadError>()
            }) {
                ExitCode::Usage
            } else {
                ExitCode::Failure
            }
        }
    };
    std::process::exit(code as i32);
}
