//! The command-line interface: one file per subcommand, flags in `args.rs`.

pub mod args;
pub mod baseline;
pub mod clean;
pub mod compare;
pub mod info;
pub mod report;
pub mod run;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

/// The process exit codes (documented in `isobench --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Failure = 1,
    Usage = 2,
    Interrupted = 130,
}

/// Run the parsed command.
pub fn dispatch(cli: args::Cli) -> Result<ExitCode> {
    match cli.command {
        args::Command::Run(a) => {
            let interrupted = Arc::new(AtomicBool::new(false));
            let flag = interrupted.clone();
            // A second Ctrl-C while we clean up is ignored: cleanup must finish.
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
                .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler failed: {e}"))?;
            run::run(&a, interrupted)
        }
        args::Command::Info => info::info(),
        args::Command::Clean(a) => clean::clean(&a),
        args::Command::Report(a) => report::report(&a),
        args::Command::Compare(a) => compare::compare(&a),
        args::Command::Baseline(a) => baseline::baseline(&a),
    }
}
