//! The run protocol (docs/METHODOLOGY.md): warm-up rounds (discarded), then measured rounds; each
//! round runs every (environment, workload) pair once in a seeded random order, verifies
//! every checksum, and hands the round's samples to a sink as soon as the round ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::env::{EnvError, Environment, InstanceSpec};
use crate::results::{SampleRow, SampleSink};
use crate::workload::{Better, ChecksumMismatch, Prepared, Workload, START};

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
    #[error("writing samples failed: {0} (is the results disk full? free space and run again)")]
    Sink(#[source] std::io::Error),
}

/// What one task of a round is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Workload `i` of the prepared list.
    Workload(usize),
    /// The `start` metric: launch a fresh instance to its first instruction.
    Start,
}

/// Progress notifications, for the progress bar.
pub trait Progress {
    fn task_started(&mut self, round: u32, warmup: bool, env: &str, workload: &str);
    fn task_done(&mut self);
    /// Round `round` (counting warm-up rounds, from 0) has ended.
    fn round_done(&mut self, _round: u32) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn task_started(&mut self, _: u32, _: bool, _: &str, _: &str) {}
    fn task_done(&mut self) {}
}

/// The fixed inputs of the round loop.
pub struct Protocol<'a> {
    pub workloads: &'a [(&'static Workload, Prepared)],
    pub start: bool,
    pub rounds: u32,
    pub warmup: u32,
    pub seed: u64,
    pub tsc_hz: f64,
    pub spec: &'a InstanceSpec,
}

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Complete,
    /// Interrupted after `rounds_done` measured rounds.
    Interrupted {
        rounds_done: u32,
    },
}

/// The seeded order of round `round`: every (environment, task) pair once.
pub fn round_order(
    seed: u64,
    round: u32,
    envs: usize,
    workloads: usize,
    start: bool,
) -> Vec<(usize, Task)> {
    let mut tasks: Vec<(usize, Task)> = (0..envs)
        .flat_map(|e| {
            (0..workloads)
                .map(move |w| (e, Task::Workload(w)))
                .chain(start.then_some((e, Task::Start)))
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ (u64::from(round) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    tasks.shuffle(&mut rng);
    tasks
}

/// Run one task and turn its outcome into sample rows.
fn run_task(
    env: &mut dyn Environment,
    task: Task,
    round: u32,
    p: &Protocol,
) -> Result<Vec<SampleRow>, MeasureError> {
    let label = env.label().to_string();
    match task {
        Task::Start => {
            let t0 = Instant::now();
            let cycles = env.measure_start(p.spec)?;
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
        Task::Workload(i) => {
            let (w, prepared) = &p.workloads[i];
            let raw = env.invoke(&prepared.invocation)?;
            let metrics = (w.interpret)(prepared, &raw, p.tsc_hz).map_err(|source| {
                MeasureError::Checksum {
                    env: label.clone(),
                    source,
                }
            })?;
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

/// The round loop. `envs` must already be started. Stops early (keeping what was measured)
/// when `interrupted` becomes true; an error ends the loop and is returned after the
/// completed rounds were handed to `sink`.
pub fn run_rounds(
    envs: &mut [Box<dyn Environment>],
    p: &Protocol,
    sink: &mut dyn SampleSink,
    progress: &mut dyn Progress,
    interrupted: &AtomicBool,
) -> Result<Ended, MeasureError> {
    let total = p.warmup + p.rounds;
    for r in 0..total {
        let warmup = r < p.warmup;
        let round = r.saturating_sub(p.warmup);
        let mut rows = Vec::new();
        for (e, task) in round_order(p.seed, r, envs.len(), p.workloads.len(), p.start) {
            if interrupted.load(Ordering::SeqCst) {
                return Ok(Ended::Interrupted {
                    rounds_done: if warmup { 0 } else { round },
                });
            }
            let env = envs[e].as_mut();
            let name = match task {
                Task::Start => START,
                Task::Workload(i) => p.workloads[i].0.name,
            };
            progress.task_started(r, warmup, env.label(), name);
            match run_task(env, task, round, p) {
                Ok(task_rows) => rows.extend(task_rows),
                // A Ctrl-C reaches the runners too; their death is then the interruption.
                Err(_) if interrupted.load(Ordering::SeqCst) => {
                    return Ok(Ended::Interrupted {
                        rounds_done: if warmup { 0 } else { round },
                    });
                }
                Err(err) => return Err(err),
            }
            progress.task_done();
        }
        if !warmup {
            sink.round_done(&rows).map_err(MeasureError::Sink)?;
        }
        progress.round_done(r);
    }
    Ok(Ended::Complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_seeded_and_complete() {
        let a = round_order(7, 0, 3, 4, true);
        assert_eq!(a, round_order(7, 0, 3, 4, true));
        assert_ne!(
            a,
            round_order(7, 1, 3, 4, true),
            "rounds get different orders"
        );
        assert_eq!(a.len(), 3 * 5);
        let mut sorted = a.clone();
        sorted.sort_by_key(|(e, t)| (*e, format!("{t:?}")));
        sorted.dedup();
        assert_eq!(sorted.len(), 15, "every pair exactly once");
    }
}
