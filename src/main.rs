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
    quiet_broken_pipe();
    let result = match std::panic::catch_unwind(|| cli::dispatch(parsed)) {
        Ok(result) => result,
        Err(payload) if is_broken_stdout(panic_message(payload.as_ref())) => {
            std::process::exit(BROKEN_PIPE_EXIT)
        }
        Err(payload) => std::panic::resume_unwind(payload),
    };
    let code = match result {
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

/// The exit status of a command whose reader went away, as a shell reports one killed by
/// SIGPIPE (128 + 13).
const BROKEN_PIPE_EXIT: i32 = 141;

/// A reader that stops early (`isobench info | head`) closes our stdout, and `println!`
/// panics with "failed printing to stdout: Broken pipe". That is not isobench failing: the
/// hook keeps quiet about that one panic, and `main` ends with [`BROKEN_PIPE_EXIT`] once it
/// has unwound, so a run's environments are still stopped and cleaned up on the way. The
/// harness keeps SIGPIPE ignored (Rust's default): a runner that dies must show up as an
/// error on its pipe, not kill the harness.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_stdout(panic_message(info.payload())) {
            default(info);
        }
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("")
}

fn is_broken_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}
