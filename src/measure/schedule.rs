//! The budget design's bookkeeping: per task, the primary metric's paired log ratios against
//! native as blocks arrive, how precise each environment's estimate is, and which task takes
//! the next block (docs/METHODOLOGY.md, "Budget and precision").

use std::collections::BTreeMap;
use std::time::Duration;

use crate::results::{SampleRow, NATIVE};
use crate::stats::sequential::{half_width_of, StoppingRule};
use crate::stats::summary::Estimator;
use crate::stats::Better;

/// What one task has measured so far.
struct TaskTrack {
    /// The metric the scheduler watches (the workload's representative metric).
    primary: String,
    better: Option<Better>,
    /// Per environment index: block → primary value.
    values: Vec<BTreeMap<u32, f64>>,
    /// Measured blocks taken.
    blocks: u32,
    /// Time spent on this task's blocks, warm-up included.
    spent: Duration,
    /// A one-operation task takes exactly this many blocks, whatever their precision.
    fixed: Option<u32>,
}

/// The state of one (task, environment) estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct Precision {
    pub task: usize,
    pub env: usize,
    /// Paired blocks.
    pub n: usize,
    /// 95% half-width of the mean log ratio (None: too few blocks to say).
    pub half_width: Option<f64>,
    /// Mean log ratio.
    pub mean: f64,
}

/// Per-task precision tracking and the choice of the next task.
pub struct Tracker {
    tasks: Vec<TaskTrack>,
    /// Index of `native` among the environments (none: no pairing, no precision).
    native: Option<usize>,
    envs: usize,
    rule: StoppingRule,
    /// The estimator the analysis will use: the half-widths follow it.
    estimator: Estimator,
    /// Log-scale distance from zero beyond which an interval is settled whatever its width.
    settled_beyond: f64,
}

impl Tracker {
    /// `primaries[t]` is task `t`'s watched metric; `labels` the environments in instance
    /// order; `margin` the verdict margin (fraction).
    pub fn new(
        primaries: Vec<String>,
        labels: &[&str],
        rule: StoppingRule,
        estimator: Estimator,
        margin: f64,
    ) -> Tracker {
        Tracker {
            tasks: primaries
                .into_iter()
                .map(|primary| TaskTrack {
                    primary,
                    better: None,
                    values: vec![BTreeMap::new(); labels.len()],
                    blocks: 0,
                    spent: Duration::ZERO,
                    fixed: None,
                })
                .collect(),
            native: labels.iter().position(|l| *l == NATIVE),
            envs: labels.len(),
            rule,
            estimator,
            settled_beyond: (1.0 + 2.0 * margin).ln(),
        }
    }

    /// Take the rows of one environment's sample in measured block `block` of `task`.
    pub fn record(&mut self, task: usize, env: usize, block: u32, rows: &[SampleRow]) {
        let t = &mut self.tasks[task];
        if let Some(row) = rows.iter().find(|r| r.metric == t.primary) {
            t.better = row.better;
            t.values[env].insert(block, row.value);
        }
    }

    /// A block of `task` ended after `took` (measured: `measured`).
    pub fn block_done(&mut self, task: usize, took: Duration, measured: bool) {
        let t = &mut self.tasks[task];
        t.spent += took;
        if measured {
            t.blocks += 1;
        }
    }

    /// Give `task` exactly `blocks` measured blocks instead of a precision target.
    pub fn fix_blocks(&mut self, task: usize, blocks: u32) {
        self.tasks[task].fixed = Some(blocks);
    }

    /// Time spent on `task` so far, warm-up included.
    pub fn spent(&self, task: usize) -> Duration {
        self.tasks[task].spent
    }

    pub fn blocks(&self, task: usize) -> u32 {
        self.tasks[task].blocks
    }

    /// The paired log ratios of environment `env` against native for `task`, block order.
    fn log_ratios(&self, task: usize, env: usize) -> Vec<f64> {
        let t = &self.tasks[task];
        let (Some(native), Some(better)) = (self.native, t.better) else {
            return Vec::new();
        };
        t.values[env]
            .iter()
            .filter_map(|(b, v)| better.log_overhead(*t.values[native].get(b)?, *v))
            .collect()
    }

    /// The precision of every compared environment of `task`.
    pub fn precision(&self, task: usize) -> Vec<Precision> {
        (0..self.envs)
            .filter(|e| Some(*e) != self.native)
            .map(|env| {
                let d = self.log_ratios(task, env);
                Precision {
                    task,
                    env,
                    n: d.len(),
                    half_width: half_width_of(self.estimator, &d),
                    mean: if d.is_empty() {
                        0.0
                    } else {
                        self.estimator.apply(&mut d.clone())
                    },
                }
            })
            .collect()
    }

    /// Whether one estimate needs no more blocks: its interval is as narrow as the target,
    /// or (after the minimum number of blocks) so far from zero that no verdict can change.
    fn settled(&self, p: &Precision) -> bool {
        let Some(hw) = p.half_width else { return false };
        if p.n < self.rule.min_n {
            return false;
        }
        hw <= self.rule.target_half_width || p.mean.abs() - hw > self.settled_beyond
    }

    /// Whether every compared environment of `task` is settled. Without native nothing is
    /// ever settled (there is nothing to pair with).
    pub fn done(&self, task: usize) -> bool {
        if let Some(n) = self.tasks[task].fixed {
            return self.tasks[task].blocks >= n;
        }
        self.native.is_some() && self.precision(task).iter().all(|p| self.settled(p))
    }

    /// How far `task` is from its target: the widest half-width over the target (infinite
    /// when a half-width cannot be computed yet), over its unsettled estimates.
    fn need(&self, task: usize) -> f64 {
        if self.tasks[task].fixed.is_some() {
            // Bounded and usually cheap: take them before the open-ended ones.
            return f64::INFINITY;
        }
        self.precision(task)
            .iter()
            .filter(|p| !self.settled(p))
            .map(|p| match p.half_width {
                // Below the minimum an interval is not trusted whatever its width: those
                // blocks come first.
                Some(_) if p.n < self.rule.min_n => f64::INFINITY,
                Some(hw) => hw / self.rule.target_half_width,
                None => f64::INFINITY,
            })
            .fold(0.0, f64::max)
    }

    /// The widest half-width of the estimates with a precision target (one-operation tasks
    /// have none), with its task and environment.
    pub fn worst(&self) -> Option<Precision> {
        (0..self.tasks.len())
            .filter(|t| self.tasks[*t].fixed.is_none())
            .flat_map(|t| self.precision(t))
            .filter(|p| p.half_width.is_some())
            .max_by(|a, b| a.half_width.partial_cmp(&b.half_width).unwrap())
    }

    /// The task that takes the next block, or `Stop` when every task is done. One-operation
    /// tasks first, until they have their blocks; then the task whose widest interval is
    /// furthest from the target (ties: fewer blocks, then the lower index). The caller
    /// stops when the budget is spent.
    pub fn next(&self) -> Next {
        (0..self.tasks.len())
            .filter(|t| !self.done(*t))
            .max_by(|a, b| {
                let (na, nb) = (self.need(*a), self.need(*b));
                na.partial_cmp(&nb)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(self.tasks[*b].blocks.cmp(&self.tasks[*a].blocks))
                    .then(b.cmp(a))
            })
            .map(Next::Task)
            .unwrap_or(Next::Stop(Stop::Reached))
    }
}

/// The scheduler's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Task(usize),
    Stop(Stop),
}

/// Why a measurement stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// The fixed number of blocks was taken.
    Fixed,
    /// Every estimate reached the precision target (or was settled beyond doubt).
    Reached,
    /// The budget was spent first.
    BudgetSpent,
}

impl Stop {
    /// The word recorded in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Fixed => "fixed",
            Stop::Reached => "reached",
            Stop::BudgetSpent => "budget-spent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, value: f64) -> SampleRow {
        SampleRow {
            round: 0,
            env: String::new(),
            workload: "w".into(),
            metric: metric.into(),
            value,
            unit: "u".into(),
            better: Some(Better::Lower),
            cycles: 0,
            wall_ns: 0,
        }
    }

    fn tracker(tasks: usize) -> Tracker {
        let rule = StoppingRule {
            target_half_width: 0.01,
            min_n: 10,
        };
        Tracker::new(
            vec!["m".into(); tasks],
            &["native", "native-b"],
            rule,
            Estimator::Mean,
            0.01,
        )
    }

    /// Feed `n` blocks of task `t` whose pair ratios scatter uniformly within ±`spread`
    /// around `effect` (a fixed pseudo-random sequence).
    fn feed(tr: &mut Tracker, t: usize, n: u32, effect: f64, spread: f64) {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..n {
            let start = tr.blocks(t);
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let wiggle = spread * (2.0 * ((x >> 11) as f64 / (1u64 << 53) as f64) - 1.0);
            tr.record(t, 0, start, &[row("m", 100.0)]);
            tr.record(t, 1, start, &[row("m", 100.0 * (1.0 + effect + wiggle))]);
            tr.block_done(t, Duration::from_millis(100), true);
        }
    }

    #[test]
    fn a_precise_task_is_done_and_a_noisy_one_goes_next() {
        let mut tr = tracker(2);
        feed(&mut tr, 0, 40, 0.0, 0.001);
        feed(&mut tr, 1, 40, 0.0, 0.2);
        assert!(tr.done(0));
        assert!(!tr.done(1));
        assert_eq!(tr.next(), Next::Task(1));
    }

    #[test]
    fn one_operation_tasks_take_their_blocks_first_and_then_are_done() {
        let mut tr = tracker(2);
        tr.fix_blocks(1, 3);
        feed(&mut tr, 0, 20, 0.0, 0.2);
        assert_eq!(tr.next(), Next::Task(1));
        feed(&mut tr, 1, 3, 0.0, 0.5);
        assert!(tr.done(1), "three blocks, however wide");
        assert_eq!(tr.next(), Next::Task(0));
    }

    #[test]
    fn few_blocks_never_settle_and_far_effects_settle() {
        let mut tr = tracker(1);
        feed(&mut tr, 0, 5, 0.0, 0.0001);
        assert!(!tr.done(0), "below min_n");
        let mut tr = tracker(1);
        feed(&mut tr, 0, 20, 1.0, 0.1);
        assert!(tr.done(0), "+100% ± 10% is above whatever comes");
        let mut tr = tracker(1);
        feed(&mut tr, 0, 40, 0.0001, 0.0002);
        assert_eq!(tr.next(), Next::Stop(Stop::Reached));
    }

    #[test]
    fn without_native_nothing_settles() {
        let rule = StoppingRule {
            target_half_width: 0.01,
            min_n: 2,
        };
        let tr = Tracker::new(vec!["m".into()], &["vm"], rule, Estimator::Mean, 0.01);
        assert!(!tr.done(0));
        assert_eq!(tr.next(), Next::Task(0));
    }
}
