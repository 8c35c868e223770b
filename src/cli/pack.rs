//! `isobench pack RUN_DIR`: one run as a gzip tarball, for a job's log or artifact store.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::ExitCode;
use crate::fleet;

const AFTER: &str = "The tarball holds one directory named after the run id with every file of
the run. `isobench merge` reads such tarballs, alone or in a directory.

Examples:
  isobench pack results/latest > host-a.tar.gz
  isobench pack results/latest -o /artifacts/$(hostname).tar.gz";

/// Flags of `isobench pack`.
#[derive(Debug, Args)]
#[command(after_help = AFTER)]
pub struct PackArgs {
    /// The run directory (results/<run-id>, results/latest) or its run.json.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,

    /// Write the tarball to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn pack(args: &PackArgs) -> Result<ExitCode> {
    match run(args) {
        Ok(()) => Ok(ExitCode::Success),
        Err(err) => {
            eprintln!("isobench: error: {}", super::describe(&err));
            Ok(ExitCode::Usage)
        }
    }
}

fn run(args: &PackArgs) -> Result<()> {
    match &args.output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let packed = fleet::pack(&args.run, std::io::BufWriter::new(file));
            if let Err(e) = packed {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            std::fs::rename(&tmp, path)
                .with_context(|| format!("moving the tarball to {}", path.display()))?;
            Ok(())
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("stdout is a terminal: redirect it (isobench pack RUN_DIR > run.tar.gz) or give -o FILE");
            }
            fleet::pack(&args.run, stdout.lock())?;
            Ok(())
        }
    }
}
