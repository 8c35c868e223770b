//! The measurement protocol (docs/METHODOLOGY.md, "Measurement protocol"): blocks of
//! adjacent samples — one task (a workload, or `start`) in every environment back to back,
//! in a seeded order balanced over positions — warm-up blocks first (discarded), then
//! measured blocks: a fixed number per task, or as many as a time budget and a precision
//! target call for. Every checksum is verified, and each block's samples go to a sink as
//! soon as the block ends.

mod order;
mod schedule;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use order::{block_order, task_order, warmup_order};
pub use schedule::{Next, Precision, Stop, Tracker};

use crate::env::{EnvError, Environment, InstanceSpec};
use crate::results::{SampleRow, SampleSink};
use crate::stats::sequential::StoppingRule;
use crate::stats::summary::Estimator;
use crate::workload::command::{CommandFailed, CommandWorkload};
use crate::workload::threads;
use crate::workload::{Better, ChecksumMismatch, Prepared, Profile, Workload, START};

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("in the {env} environment: {source}")]
    Checksum {
        env: String,
        #[source]
        source: ChecksumMismatch,
    },
    /// A user's command failed (`isobench exec`).
    #[error(transparent)]
    Command(#[from] Box<CommandFailed>),
    #[error("writing samples failed: {0} (is the results disk full? free space and run again)")]
    Sink(#[source] std::io::Error),
}

/// What one task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Workload `i` of the prepared list.
    Workload(usize),
    /// The `start` metric: launch a fresh instance to its first instruction.
    Start,
    /// The user's command (`isobench exec`).
    Command,
}

/// How many blocks each task gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Design {
    /// Exactly `blocks` measured blocks per task (`--rounds`).
    Fixed { blocks: u32 },
    /// At least `min_blocks` per task; one-operation tasks (`start`, and workloads that are
    /// not repeated) then take `one_operation_blocks` in all, and the others take blocks
    /// where the intervals are widest until every estimate meets `rule` or `budget` (warm-up
    /// included) is spent.
    Budget {
        budget: Duration,
        rule: StoppingRule,
        min_blocks: u32,
        one_operation_blocks: u32,
    },
}

/// Where the measurement is, for a progress display.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub warmup: bool,
    pub elapsed: Duration,
    /// The budget of a budget design.
    pub budget: Option<Duration>,
    /// Blocks taken so far (all tasks, warm-up included) and, for a fixed design, in all.
    pub blocks: u64,
    pub planned_blocks: Option<u64>,
    /// The widest half-width so far (fraction, log scale) and `workload/env` it belongs to.
    pub worst: Option<(String, f64)>,
}

/// Progress notifications, for the progress display.
pub trait Progress {
    /// One sample starts: `workload` in `env`.
    fn task_started(&mut self, warmup: bool, env: &str, workload: &str);
    /// A block ended.
    fn block_done(&mut self, _status: &Status) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn task_started(&mut self, _: bool, _: &str, _: &str) {}
}

/// The fixed inputs of the measurement.
pub struct Protocol<'a> {
    pub workloads: &'a [(&'static Workload, Prepared)],
    /// The profile the workloads were prepared for (it names their primary metrics).
    pub profile: Profile,
    pub start: bool,
    pub design: Design,
    /// Warm-up blocks per task, discarded.
    pub warmup: u32,
    pub seed: u64,
    pub tsc_hz: f64,
    pub spec: &'a InstanceSpec,
    /// Verdict margin (fraction): estimates far beyond it need no more precision.
    pub margin: f64,
    /// The location estimator the analysis will use on the paired log ratios (the budget
    /// design's half-widths follow it).
    pub estimator: Estimator,
    /// Validation only (`--inject-slowdown`): the timed cycles of the environment with this
    /// label are multiplied by `1 + fraction`, so a known slowdown can be checked for.
    pub inject: Option<(String, f64)>,
    /// A user's command, measured as one more task (`isobench exec`).
    pub command: Option<&'a CommandWorkload>,
    /// `--keep-going`: a failed invocation drops its task from the rest of the schedule
    /// (its partial block is not kept, its complete blocks are), restarts the environment
    /// instance, and the other tasks go on; the failures are returned in [`Outcome`].
    pub keep_going: bool,
}

impl Protocol<'_> {
    fn tasks(&self) -> Vec<Task> {
        (0..self.workloads.len())
            .map(Task::Workload)
            .chain(self.start.then_some(Task::Start))
            .chain(self.command.is_some().then_some(Task::Command))
            .collect()
    }

    fn task_name(&self, task: Task) -> &str {
        match task {
            Task::Start => START,
            Task::Workload(i) => self.workloads[i].0.name,
            Task::Command => self.command.map_or("", |c| c.name.as_str()),
        }
    }

    /// The metric the budget design watches for `task`.
    fn primary(&self, task: Task) -> String {
        match task {
            Task::Start => "start_us".into(),
            Task::Workload(i) => (self.workloads[i].0.primary)(self.profile),
            Task::Command => self.command.map(|c| c.primary()).unwrap_or_default(),
        }
    }

    /// Whether `task` is one long operation rather than many short repetitions.
    fn one_operation(&self, task: Task) -> bool {
        match task {
            Task::Start => true,
            Task::Workload(i) => !self.workloads[i].0.repeated,
            // Precision-driven, like a repeated kernel: more blocks buy a tighter interval.
            Task::Command => false,
        }
    }

    fn injected_slowdown(&self, label: &str) -> f64 {
        match &self.inject {
            Some((l, f)) if l == label => 1.0 + f,
            _ => 1.0,
        }
    }
}

fn slowed(cycles: u64, factor: f64) -> u64 {
    if factor == 1.0 {
        cycles
    } else {
        (cycles as f64 * factor).round() as u64
    }
}

/// How the measurement ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// All blocks of the design were taken, for `stop`.
    Complete { stop: Stop },
    /// Interrupted; what was measured was handed to the sink.
    Interrupted,
}

/// What the measurement did.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub ended: Ended,
    /// Measured blocks per task, in task order (workloads, then `start`).
    pub blocks: Vec<(String, u32)>,
    /// Time from the first warm-up block to the end.
    pub elapsed: Duration,
    /// Tasks dropped after a failure (`keep_going`), in the order they failed.
    pub failures: Vec<TaskFailure>,
}

/// A task that failed in one environment and was dropped from the rest of the run.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct TaskFailure {
    pub workload: String,
    pub env: String,
    /// The error and its causes on one line.
    pub error: String,
}

/// An error and its sources on one line, a source not repeated when its text is already there.
fn error_text(err: &MeasureError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Run one task and turn its outcome into sample rows.
fn run_task(
    env: &mut dyn Environment,
    task: Task,
    round: u32,
    p: &Protocol,
) -> Result<Vec<SampleRow>, MeasureError> {
    let label = env.label().to_string();
    let slower = p.injected_slowdown(&label);
    match task {
        Task::Start => {
            let t0 = Instant::now();
            let cycles = slowed(env.measure_start(p.spec)?, slower);
            let wall_ns = t0.elapsed().as_nanos() as u64;
            Ok(vec![SampleRow {
                round,
                env: label,
                workload: START.into(),
                metric: "start_us".into(),
                value: cycles as f64 / p.tsc_hz * 1e6,
                unit: "µs".into(),
                better: Some(Better::Lower),
                cycles,
                wall_ns,
            }])
        }
        Task::Command => {
            let Some(cmd) = p.command else {
                return Ok(Vec::new());
            };
            let run = env.run_command(&cmd.spec)?;
            let interpreted = cmd.interpret(&label, &run).map_err(MeasureError::Command)?;
            let (metrics, failed) = (interpreted.metrics, interpreted.failed);
            let row =
                |metric: String, value: f64, unit: String, better: Option<Better>| SampleRow {
                    round,
                    env: label.clone(),
                    workload: cmd.name.clone(),
                    metric,
                    value,
                    unit,
                    better,
                    cycles: 0,
                    wall_ns: run.wall_ns,
                };
            let mut rows: Vec<SampleRow> = metrics
                .into_iter()
                .map(|m| row(m.name, m.value, m.unit, Some(m.better)))
                .collect();
            let failed = u64::from(failed.is_some());
            let counters = [
                ("exec.failed".to_string(), failed),
                ("user_us".to_string(), run.user_ns / 1000),
                ("sys_us".to_string(), run.sys_ns / 1000),
            ]
            .into_iter()
            .chain(run.counters.clone());
            rows.extend(counters.map(|(name, value)| {
                row(
                    format!("counter.{name}"),
                    value as f64,
                    "count".into(),
                    None,
                )
            }));
            Ok(rows)
        }
        Task::Workload(i) => {
            let (w, prepared) = &p.workloads[i];
            let mut raw = env.invoke(&prepared.invocation)?;
            if slower != 1.0 {
                raw.cycles = slowed(raw.cycles, slower);
                for r in raw.records.iter_mut() {
                    *r = slowed(*r, slower);
                }
            }
            let mut metrics = (w.interpret)(prepared, &raw, p.tsc_hz)
                .and_then(|m| threads::check_threads(prepared, &raw).map(|()| m))
                .map_err(|source| MeasureError::Checksum {
                    env: label.clone(),
                    source,
                })?;
            // On N threads every thread did one share: a throughput counts all N.
            threads::scale(&mut metrics, raw.threads.len());
            let mut rows: Vec<SampleRow> = metrics
                .into_iter()
                .map(|m| SampleRow {
                    round,
                    env: label.clone(),
                    workload: w.name.into(),
                    metric: m.name,
                    value: m.value,
                    unit: m.unit,
                    better: Some(m.better),
                    cycles: raw.cycles,
                    wall_ns: raw.wall_ns,
                })
                .collect();
            let counters = std::iter::once(("hostcalls".to_string(), raw.hostcalls))
                .chain(raw.counters.clone());
            rows.extend(counters.map(|(name, value)| SampleRow {
                round,
                env: label.clone(),
                workload: w.name.into(),
                metric: format!("counter.{name}"),
                value: value as f64,
                unit: "count".into(),
                better: None,
                cycles: raw.cycles,
                wall_ns: raw.wall_ns,
            }));
            Ok(rows)
        }
    }
}

/// The measurement. `envs` must already be started. Stops early (keeping what was measured)
/// when `interrupted` becomes true; an error ends it and is returned after the completed
/// blocks were handed to `sink`.
pub fn run(
    envs: &mut [Box<dyn Environment>],
    p: &Protocol,
    sink: &mut dyn SampleSink,
    progress: &mut dyn Progress,
    interrupted: &AtomicBool,
) -> Result<Outcome, MeasureError> {
    let tasks = p.tasks();
    let labels: Vec<String> = envs.iter().map(|e| e.label().to_string()).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let rule = match p.design {
        Design::Budget { rule, .. } => rule,
        // A fixed design never asks; any rule will do for the progress display.
        Design::Fixed { .. } => StoppingRule {
            target_half_width: p.margin,
            min_n: 2,
        },
    };
    let primaries = tasks.iter().map(|t| p.primary(*t)).collect();
    let mut tracker = Tracker::new(primaries, &label_refs, rule, p.estimator, p.margin);
    if let Design::Budget {
        one_operation_blocks,
        ..
    } = p.design
    {
        for (i, t) in tasks.iter().enumerate() {
            if p.one_operation(*t) {
                tracker.fix_blocks(i, one_operation_blocks);
            }
        }
    }
    let mut run = Running {
        envs,
        p,
        sink,
        progress,
        tracker,
        t0: Instant::now(),
        blocks_taken: 0,
        dropped: vec![false; tasks.len()],
        failures: Vec::new(),
        planned: match p.design {
            Design::Fixed { blocks } => Some(u64::from(blocks + p.warmup) * tasks.len() as u64),
            Design::Budget { .. } => None,
        },
    };
    let outcome = |run: &Running, ended| Outcome {
        ended,
        blocks: tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (p.task_name(*t).to_string(), run.tracker.blocks(i)))
            .collect(),
        elapsed: run.t0.elapsed(),
        failures: run.failures.clone(),
    };
    let interrupted_now = || interrupted.load(Ordering::SeqCst);

    // Warm-up: every task, every environment, `warmup` times; nothing kept.
    for w in 0..p.warmup {
        for ti in task_order(p.seed, w, tasks.len()) {
            if !run.block(&tasks, ti, None, interrupted)? {
                return Ok(outcome(&run, Ended::Interrupted));
            }
        }
    }
    let stop = match p.design {
        Design::Fixed { blocks } => {
            for pass in 0..blocks {
                for ti in task_order(p.seed, p.warmup + pass, tasks.len()) {
                    let block = run.tracker.blocks(ti);
                    if !run.block(&tasks, ti, Some(block), interrupted)? {
                        return Ok(outcome(&run, Ended::Interrupted));
                    }
                }
            }
            Stop::Fixed
        }
        Design::Budget {
            budget, min_blocks, ..
        } => {
            for pass in 0..min_blocks {
                for ti in task_order(p.seed, p.warmup + pass, tasks.len()) {
                    let block = run.tracker.blocks(ti);
                    if !run.block(&tasks, ti, Some(block), interrupted)? {
                        return Ok(outcome(&run, Ended::Interrupted));
                    }
                }
            }
            loop {
                if interrupted_now() {
                    return Ok(outcome(&run, Ended::Interrupted));
                }
                let next = if run.t0.elapsed() >= budget {
                    Next::Stop(Stop::BudgetSpent)
                } else {
                    run.tracker.next()
                };
                match next {
                    Next::Stop(stop) => break stop,
                    Next::Task(ti) => {
                        let block = run.tracker.blocks(ti);
                        if !run.block(&tasks, ti, Some(block), interrupted)? {
                            return Ok(outcome(&run, Ended::Interrupted));
                        }
                    }
                }
            }
        }
    };
    Ok(outcome(&run, Ended::Complete { stop }))
}

/// The state of a measurement in progress.
struct Running<'a, 'p> {
    envs: &'a mut [Box<dyn Environment>],
    p: &'a Protocol<'p>,
    sink: &'a mut dyn SampleSink,
    progress: &'a mut dyn Progress,
    tracker: Tracker,
    t0: Instant,
    blocks_taken: u64,
    /// Tasks dropped after a failure (`keep_going`), by task index.
    dropped: Vec<bool>,
    failures: Vec<TaskFailure>,
    planned: Option<u64>,
}

impl Running<'_, '_> {
    /// One block of task `ti`: every environment once, in the balanced order. `block` is the
    /// measured block's number (`None`: a warm-up block, whose samples are dropped). Returns
    /// false when the run was interrupted.
    fn block(
        &mut self,
        tasks: &[Task],
        ti: usize,
        block: Option<u32>,
        interrupted: &AtomicBool,
    ) -> Result<bool, MeasureError> {
        if self.dropped[ti] {
            return Ok(true);
        }
        let task = tasks[ti];
        let name = self.p.task_name(task);
        let started = Instant::now();
        let order = match block {
            Some(b) => block_order(self.p.seed, ti, b, self.envs.len()),
            None => warmup_order(self.p.seed, ti, self.blocks_taken as u32, self.envs.len()),
        };
        let mut rows = Vec::new();
        for e in order {
            if interrupted.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let env = self.envs[e].as_mut();
            self.progress
                .task_started(block.is_none(), env.label(), name);
            match run_task(env, task, block.unwrap_or(0), self.p) {
                Ok(task_rows) => {
                    if let Some(b) = block {
                        self.tracker.record(ti, e, b, &task_rows);
                        rows.extend(task_rows);
                    }
                }
                // A Ctrl-C reaches the runners too; their death is then the interruption.
                Err(_) if interrupted.load(Ordering::SeqCst) => return Ok(false),
                Err(err) if self.p.keep_going && !matches!(err, MeasureError::Sink(_)) => {
                    self.drop_task(ti, e, name, &err)?;
                    return Ok(true);
                }
                Err(err) => return Err(err),
            }
        }
        if block.is_some() {
            self.sink.round_done(&rows).map_err(MeasureError::Sink)?;
        }
        self.tracker
            .block_done(ti, started.elapsed(), block.is_some());
        self.blocks_taken += 1;
        let worst = self.tracker.worst().and_then(|w| {
            let label = self.envs[w.env].label();
            Some((
                format!("{}/{label}", self.p.task_name(tasks[w.task])),
                w.half_width?,
            ))
        });
        self.progress.block_done(&Status {
            warmup: block.is_none(),
            elapsed: self.t0.elapsed(),
            budget: match self.p.design {
                Design::Budget { budget, .. } => Some(budget),
                Design::Fixed { .. } => None,
            },
            blocks: self.blocks_taken,
            planned_blocks: self.planned,
            worst,
        });
        Ok(true)
    }

    /// `keep_going`: record that task `ti` failed in environment `e`, drop it from the rest
    /// of the schedule (the block in progress is not kept), and start the environment's
    /// instance again (a crash or deadline leaves it stopped). A restart that fails ends
    /// the run with that error.
    fn drop_task(
        &mut self,
        ti: usize,
        e: usize,
        name: &str,
        err: &MeasureError,
    ) -> Result<(), MeasureError> {
        let env = self.envs[e].as_mut();
        self.failures.push(TaskFailure {
            workload: name.to_string(),
            env: env.label().to_string(),
            error: error_text(err),
        });
        self.dropped[ti] = true;
        // Done as far as the scheduler is concerned: a budget design picks it no more.
        self.tracker.fix_blocks(ti, self.tracker.blocks(ti));
        // Stop whatever is left of the instance, then start a fresh one.
        let _ = env.stop();
        env.start(self.p.spec)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowdown_scales_cycles() {
        assert_eq!(slowed(1000, 1.0), 1000);
        assert_eq!(slowed(1000, 1.02), 1020);
    }
}
