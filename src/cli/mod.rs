//! The command-line interface: one file per subcommand, flags in `args.rs`.

pub mod args;
pub mod baseline;
pub mod claims;
pub mod clean;
pub mod compare;
pub mod exec;
pub mod export;
pub mod info;
pub mod merge;
pub mod pack;
mod progress;
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

pub use crate::session::describe;

/// Run the parsed command.
pub fn dispatch(cli: args::Cli) -> Result<ExitCode> {
    match cli.command {
        args::Command::Run(a) => {
            let interrupted = Arc::new(AtomicBool::new(false));
            let flag = interrupted.clone();
            // A second Ctrl-C while we clean up is ignored: cleanup must finish.
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
                .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler failed: {e}"))?;
            run::run(&a, &interrupted)
        }
        args::Command::Exec(a) => {
            let interrupted = Arc::new(AtomicBool::new(false));
            let flag = interrupted.clone();
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
                .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler failed: {e}"))?;
            exec::exec(&a, &interrupted)
        }
        args::Command::ExecInit { fd, plan } => crate::env::container::exec::init_main(fd, &plan),
        args::Command::Info => info::info(),
        args::Command::Clean(a) => clean::clean(&a),
        args::Command::Report(a) => report::report(&a),
        args::Command::Compare(a) => compare::compare(&a),
        args::Command::Baseline(a) => baseline::baseline(&a),
        args::Command::Merge(a) => merge::merge(&a),
        args::Command::Pack(a) => pack::pack(&a),
        args::Command::Export(a) => export::export(&a),
        args::Command::Claims(a) => {
            let interrupted = Arc::new(AtomicBool::new(false));
            let flag = interrupted.clone();
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
                .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler failed: {e}"))?;
            claims::claims(&a, &interrupted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_does_not_repeat_quoted_causes() {
        let io = std::io::Error::other("disk full");
        let quoted = anyhow::Error::new(crate::results::ReadError::Io {
            path: "x.csv".into(),
            source: io,
        })
        .context("reading the run");
        assert_eq!(
            describe(&quoted),
            "reading the run: cannot read x.csv: disk full"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&plain), "outer: inner");
    }
}
