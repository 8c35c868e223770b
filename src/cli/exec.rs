//! `isobench exec [OPTIONS] -- CMD [ARGS...]`: validate the command and the run options,
//! then the same run as `isobench run` (`run::run_plan`) with the command as its workload.

use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;

use super::args::OutputArgs;
use super::ExitCode;
use crate::plan::{ExecOptions, RunOptions};

pub const AFTER: &str = "What is measured, per sample: wall_ms (fork to reap), user_ms and sys_ms
(rusage of the command and every descendant it waited for), peak_rss_mib, and each
--metric / --metric-json value. The container's root is an overlay whose read-only lower
layer is the host's / (or --rootfs), so it runs the host's programs; its writes land in
the overlay's upper layer, never in the host's files. The vm cannot run a Linux program
and is skipped. Each sample's stdout/stderr is kept in OUT/<run>/output/<env>/.

Examples:
  isobench exec --env native,container --rounds 10 \\
      --metric 'eps=events per second:\\s*([0-9.]+)' --better higher -- sysbench cpu --time=1 run
  isobench exec --cpus 0.5 --metric 'eps=events per second:\\s*([0-9.]+)' --better higher \\
      -- sysbench cpu --time=1 run
  isobench exec --metric-json 'bw=jobs.0.write.bw' --better higher --setup 'mkdir -p /tmp/f' \\
      -- fio --name=w --directory=/tmp/f --rw=write --size=64M --output-format=json
  isobench exec --better lower --metric 's=took ([0-9.]+) s' -- python3 loop.py";

/// Everything `isobench exec` accepts.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub exec: ExecOptions,
    #[command(flatten)]
    pub run: RunOptions,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn exec(args: &ExecArgs, interrupted: &AtomicBool) -> Result<ExitCode> {
    let plan = args.exec.plan(&args.run).context("invalid exec options")?;
    super::run::run_plan(&plan, args.output, interrupted)
}
