//! What the user sees while a run measures: a progress bar on a terminal (time left under
//! a budget, the widest interval so far), a line every few seconds otherwise, and the
//! session's notes on stderr.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::measure::{Progress, Status};
use crate::plan::Design;
use crate::session::Observer;

/// How often a line is printed when there is no terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

pub struct Bar {
    bar: Option<ProgressBar>,
    /// The current sample, shown beside the bar.
    current: String,
    last_line: Instant,
}

impl Bar {
    pub fn new() -> Bar {
        Bar {
            bar: None,
            current: String::new(),
            last_line: Instant::now(),
        }
    }
}

/// `±1.23% (cpu.fp/container)`.
fn worst_text(s: &Status) -> String {
    match &s.worst {
        Some((what, hw)) => format!("widest ±{:.2}% ({what})", hw.exp_m1() * 100.0),
        None => String::new(),
    }
}

impl Progress for Bar {
    fn task_started(&mut self, warmup: bool, env: &str, workload: &str) {
        self.current = format!(
            "{}{workload:<11} {env:<9}",
            if warmup { "warm-up " } else { "" }
        );
        if let Some(bar) = &self.bar {
            bar.set_message(self.current.clone());
        }
    }

    fn block_done(&mut self, s: &Status) {
        let Some(bar) = &self.bar else { return };
        match (s.budget, s.planned_blocks) {
            (Some(budget), _) => {
                bar.set_length(budget.as_secs().max(1));
                bar.set_position(s.elapsed.as_secs().min(budget.as_secs()));
                bar.set_prefix(format!(
                    "{:>4.0} s left",
                    budget.saturating_sub(s.elapsed).as_secs_f64()
                ));
            }
            (None, Some(planned)) => {
                bar.set_length(planned);
                bar.set_position(s.blocks);
                bar.set_prefix(format!("block {}/{planned}", s.blocks));
            }
            (None, None) => {}
        }
        bar.set_message(format!("{}  {}", self.current, worst_text(s)));
        // Without a terminal the bar is hidden: say something every few seconds instead.
        if bar.is_hidden() && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!(
                "  {:.0} s: {} blocks{}  {}",
                s.elapsed.as_secs_f64(),
                s.blocks,
                if s.warmup { " (warm-up)" } else { "" },
                worst_text(s)
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

    fn measuring(&mut self, design: &Design) {
        let bar = ProgressBar::new(match design {
            Design::Budget { budget, .. } => budget.as_secs().max(1),
            Design::Fixed { .. } => 1,
        });
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:24} {prefix}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.last_line = Instant::now();
        self.bar = Some(bar);
    }

    fn measured(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
