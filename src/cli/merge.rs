//! `isobench merge`: many hosts' runs in, one fleet report out (`fleet` does the work).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::ExitCode;
use crate::fleet::{self, inputs::HOSTS_DIR, render, MergeOptions};
use crate::stats::bootstrap::DEFAULT_RESAMPLES;

const AFTER: &str = "What the fleet report says, per (workload, metric, environment):
  per host  the host's overhead against native with its 95% interval, from its own run
  pooled    a DerSimonian–Laird random-effects estimate across hosts, its 95% interval
            (Hartung–Knapp: Student's t with hosts − 1 degrees of freedom, so few hosts
            give a wide interval),
            τ (the between-host spread of the true overhead, ≈ a fraction) and I² (the share
            of the hosts' spread that is not measurement noise: ~0% = they agree), and the
            fleet verdict against ±MARGIN (within: the pooled 90% interval inside ±MARGIN)

Inputs: run directories (results/<run-id>), directories holding runs or tarballs (a
results directory; `latest`, hidden entries and baselines/ are skipped), and tarballs made
by `isobench pack`. Every run is validated; runs of different isobench versions, images,
schemas or profiles are refused unless --allow-mixed (the report lists the differences).

Writes into --out (new or empty): fleet.md, fleet.html, fleet.csv, fleet.json,
plots/forest-*.svg|png (one per headline metric), hosts/NNN/ (a copy of every input run),
and run.json + samples.csv: the hosts' samples as one run, so that
  isobench compare FLEET_DIR results/latest
  isobench baseline save fleet FLEET_DIR
use the fleet as a baseline (its rounds are every host's blocks).

Exit codes: 0 merged; 2 bad usage or input (missing, broken or mixed runs).

Examples:
  isobench merge results/ --out fleet
  isobench merge host-a.tar.gz host-b.tar.gz host-c.tar.gz --out fleet --margin 2";

/// Flags of `isobench merge`.
#[derive(Debug, Args)]
#[command(after_help = AFTER)]
pub struct MergeArgs {
    /// Run directories, directories of runs, or tarballs from `isobench pack`.
    #[arg(value_name = "RUN|DIR|TARBALL", required = true)]
    pub inputs: Vec<PathBuf>,

    /// Directory the fleet report is written to (created; must be new or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Merge runs of different isobench versions, images, schemas or profiles anyway.
    #[arg(long)]
    pub allow_mixed: bool,

    /// Margin of the fleet verdicts in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub margin: f64,
}

/// Run `merge`: every failure is an input or usage error (exit 2).
pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    match run(args) {
        Ok(()) => Ok(ExitCode::Success),
        Err(err) => {
            eprintln!("isobench: error: {}", super::describe(&err));
            Ok(ExitCode::Usage)
        }
    }
}

fn run(args: &MergeArgs) -> Result<()> {
    let margin = crate::plan::margin_fraction(args.margin)?;
    let out = &args.out;
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("reading the output directory {}", out.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "the output directory {} is not empty: give a new directory to --out (a merge never overwrites one)",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the output directory {}", out.display()))?;
    let result = (|| -> Result<(fleet::Fleet, Vec<PathBuf>)> {
        let runs = fleet::collect_runs(&args.inputs, &out.join(HOSTS_DIR))?;
        let options = MergeOptions {
            margin,
            allow_mixed: args.allow_mixed,
            resamples: DEFAULT_RESAMPLES,
        };
        let fleet = fleet::merge(&runs, &options)?;
        let files = render::write_fleet(&fleet, &runs, out)?;
        Ok((fleet, files))
    })();
    match result {
        Ok((fleet, files)) => {
            for d in &fleet.differences {
                eprintln!("isobench: warning: {d} (merged because of --allow-mixed)");
            }
            print!("{}", fleet::fleet_table(&fleet));
            for f in files {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Err(e) => {
            // Leave nothing half-written behind: the directory was new or empty.
            let _ = std::fs::remove_dir_all(out);
            Err(e)
        }
    }
}
