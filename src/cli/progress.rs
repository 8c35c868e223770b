//! What the user sees while a run measures: a progress bar on a terminal, a line per round
//! otherwise, and the session's notes on stderr.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::measure::Progress;
use crate::session::Observer;

/// Progress bar on a terminal; a line per round otherwise. Notes go to stderr.
pub struct Bar {
    bar: Option<ProgressBar>,
    rounds: u32,
    warmup: u32,
    t0: Instant,
}

impl Bar {
    pub fn new() -> Bar {
        Bar {
            bar: None,
            rounds: 0,
            warmup: 0,
            t0: Instant::now(),
        }
    }
}

impl Progress for Bar {
    fn task_started(&mut self, round: u32, warmup: bool, env: &str, workload: &str) {
        let phase = if warmup {
            format!("warm-up {}/{}", round + 1, self.warmup)
        } else {
            format!("round {}/{}", round - self.warmup + 1, self.rounds)
        };
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{phase}  {env:<9} {workload}"));
        }
    }
    fn task_done(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
    fn round_done(&mut self, round: u32) {
        // Without a terminal the bar is hidden: say something per round instead.
        if self.bar.as_ref().is_some_and(|b| b.is_hidden()) {
            let (what, n, of) = if round < self.warmup {
                ("warm-up round", round + 1, self.warmup)
            } else {
                ("round", round - self.warmup + 1, self.rounds)
            };
            eprintln!(
                "  {what} {n}/{of} done ({:.0} s)",
                self.t0.elapsed().as_secs_f64()
            );
        }
    }
}

impl Observer for Bar {
    fn note(&mut self, message: &str) {
        match message.strip_prefix("  ") {
            Some(indented) => eprintln!("  {indented}"),
            None => eprintln!("isobench: {message}"),
        }
    }
    fn measuring(&mut self, tasks: u64, rounds: u32, warmup: u32) {
        let bar = ProgressBar::new(tasks);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        (self.rounds, self.warmup, self.t0) = (rounds, warmup, Instant::now());
        self.bar = Some(bar);
    }
    fn measured(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
