//! The interference one invocation met, read from `/proc` just before the run command goes
//! out and just after the answer comes back (outside the image's timed region), so that a
//! disturbed sample can be flagged and counted. Three counters, written as `counter.<name>`
//! rows next to the samples:
//!
//! - [`STEAL_TICKS`]: the steal column (the 8th value) of the pinned CPU's line in
//!   `/proc/stat`, or of the aggregate `cpu` line when the instance is not pinned: time the
//!   hypervisor gave the vCPU to someone else, in `USER_HZ` ticks (10 ms), so short
//!   invocations mostly see 0;
//! - [`RUN_DELAY_NS`]: the measuring thread's `run_delay` (the 2nd field of its
//!   `schedstat`): time it was runnable but waited on a runqueue;
//! - [`NIVCSW`]: the measuring thread's involuntary context switches
//!   (`nonvoluntary_ctxt_switches` in its `status`): how often it was preempted.
//!
//! The measuring thread is the runner (`/proc/<pid>/task/<tid>/…`) or, in the vm, the
//! harness thread that runs `KVM_RUN` (`/proc/thread-self/schedstat`; its involuntary
//! switches come from `getrusage(RUSAGE_THREAD)`, the same kernel counter `status` prints,
//! without formatting the whole `status` file).
//!
//! A file that is missing or unreadable (no `/proc`, a kernel without `CONFIG_SCHED_INFO`,
//! a thread that is gone) gives no counter rather than an error: the accounting must never
//! fail a measurement. The files are opened once and re-read with `pread` at offset 0,
//! which makes the kernel format them afresh (re-opening each time costs 3-4 µs more per
//! file). One reading, two per invocation, measured on the 2-vCPU development VM (medians;
//! `a_reading_costs_microseconds` prints them): 16 µs for a runner (`/proc/stat` 6.7,
//! `schedstat` 0.6, `status` 6.7), 8.4 µs for the vm's thread (`getrusage` 0.24 instead of
//! `status`).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::{gettid, Pid};

/// Counter names, as in `counter.<name>`.
pub const STEAL_TICKS: &str = "steal_ticks";
pub const RUN_DELAY_NS: &str = "run_delay_ns";
pub const NIVCSW: &str = "nivcsw";

/// The steal value of `cpu`'s line in `/proc/stat` text (`cpuN`), or of the aggregate `cpu`
/// line when `cpu` is `None`.
pub fn parse_steal(stat: &str, cpu: Option<usize>) -> Option<u64> {
    let label = match cpu {
        Some(c) => format!("cpu{c}"),
        None => "cpu".to_string(),
    };
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    // label user nice system idle iowait irq softirq steal ...
    line.split_whitespace().nth(8)?.parse().ok()
}

/// `run_delay` (ns), the 2nd field of a `schedstat` file: `run_time run_delay timeslices`.
pub fn parse_run_delay(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

/// `nonvoluntary_ctxt_switches` of a `status` file.
pub fn parse_nivcsw(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()
}

/// One reading of the three counters; `None` where a source was unavailable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub steal_ticks: Option<u64>,
    pub run_delay_ns: Option<u64>,
    pub nivcsw: Option<u64>,
}

impl Reading {
    /// The counters from this reading to `after`, each only where both readings have it,
    /// added to `counters`.
    pub fn add_delta(&self, after: &Reading, counters: &mut BTreeMap<String, u64>) {
        let pairs = [
            (STEAL_TICKS, self.steal_ticks, after.steal_ticks),
            (RUN_DELAY_NS, self.run_delay_ns, after.run_delay_ns),
            (NIVCSW, self.nivcsw, after.nivcsw),
        ];
        for (name, b, a) in pairs {
            if let (Some(b), Some(a)) = (b, a) {
                counters.insert(name.to_string(), a.saturating_sub(b));
            }
        }
    }

    /// The counters from this reading to `after`.
    pub fn delta(&self, after: &Reading) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        self.add_delta(after, &mut m);
        m
    }
}

/// Whose scheduling counters are read.
enum Thread {
    /// A thread of another process (the runner): its `schedstat` and `status`.
    Task {
        schedstat: Option<File>,
        status: Option<File>,
    },
    /// The calling thread (the vm's): its `schedstat`, opened through `/proc/thread-self`
    /// for the thread that opened it (reopened should another thread read), and
    /// `getrusage(RUSAGE_THREAD)`.
    Current { schedstat: Option<(Pid, File)> },
}

/// Reads the counters of one measuring thread and the CPU it is pinned to.
pub struct Reader {
    cpu: Option<usize>,
    stat: Option<File>,
    thread: Thread,
    /// Room for `/proc/stat` up to the pinned CPU's line, or for a `status` file.
    buf: Vec<u8>,
}

fn open(path: &str) -> Option<File> {
    File::open(path).ok()
}

/// The text of `file` from its start (read afresh), or `None`; a file larger than `buf` is
/// cut at `buf`'s length, which holds every line read here.
fn read_at_start<'a>(file: Option<&File>, buf: &'a mut [u8]) -> Option<&'a str> {
    let n = file?.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

impl Reader {
    fn new(cpu: Option<usize>, thread: Thread) -> Reader {
        // Each line of /proc/stat's CPU block is well under 256 bytes; `status` is a few KiB.
        // (A pinned CPU is below `CpuSet::count()`; the cap only bounds a wrong one.)
        let len = (256 * (cpu.unwrap_or(0).min(4096) + 2)).max(16 * 1024);
        Reader {
            cpu,
            stat: open("/proc/stat"),
            thread,
            buf: vec![0; len],
        }
    }

    /// For thread `tid` of process `pid` (a runner: its only thread), pinned to `cpu`.
    pub fn for_task(pid: Pid, tid: Pid, cpu: Option<usize>) -> Reader {
        let dir = format!("/proc/{pid}/task/{tid}");
        Reader::new(
            cpu,
            Thread::Task {
                schedstat: open(&format!("{dir}/schedstat")),
                status: open(&format!("{dir}/status")),
            },
        )
    }

    /// For the calling thread, pinned to `cpu` while it measures.
    pub fn for_current_thread(cpu: Option<usize>) -> Reader {
        let schedstat = open("/proc/thread-self/schedstat").map(|f| (gettid(), f));
        Reader::new(cpu, Thread::Current { schedstat })
    }

    /// Read all three counters now.
    pub fn read(&mut self) -> Reading {
        let steal_ticks =
            read_at_start(self.stat.as_ref(), &mut self.buf).and_then(|t| parse_steal(t, self.cpu));
        let (run_delay_ns, nivcsw) = match &mut self.thread {
            Thread::Task { schedstat, status } => (
                read_at_start(schedstat.as_ref(), &mut self.buf).and_then(parse_run_delay),
                read_at_start(status.as_ref(), &mut self.buf).and_then(parse_nivcsw),
            ),
            Thread::Current { schedstat } => {
                let me = gettid();
                if schedstat.as_ref().is_some_and(|(tid, _)| *tid != me) {
                    *schedstat = open("/proc/thread-self/schedstat").map(|f| (me, f));
                }
                (
                    read_at_start(schedstat.as_ref().map(|(_, f)| f), &mut self.buf)
                        .and_then(parse_run_delay),
                    getrusage(UsageWho::RUSAGE_THREAD)
                        .ok()
                        .map(|u| u.involuntary_context_switches() as u64),
                )
            }
        };
        Reading {
            steal_ticks,
            run_delay_ns,
            nivcsw,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// `/proc/stat` of a 2-vCPU cloud VM.
    const STAT: &str = "\
cpu  204316 0 18163 68544 622 0 126 123 708 0
cpu0 99173 0 8351 38160 165 0 22 58 343 0
cpu1 105142 0 9811 30384 456 0 104 65 365 0
cpu10 1 2 3 4 5 6 7 99 0 0
intr 4418425 0 9 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 9221467
btime 1732089961
processes 51233
procs_running 3
procs_blocked 0
softirq 2637457 1 633012 2 0 0 0 1040373 0 0 964069
";

    /// The `schedstat` of a thread: run_time run_delay timeslices.
    const SCHEDSTAT: &str = "88191 3527269 2\n";

    /// The tail of a `status` file.
    const STATUS: &str = "\
Name:\tisobench
State:\tS (sleeping)
Cpus_allowed:\t2
Cpus_allowed_list:\t1
Mems_allowed_list:\t0
voluntary_ctxt_switches:\t150
nonvoluntary_ctxt_switches:\t17
";

    #[test]
    fn parsing_fixture_text() {
        assert_eq!(parse_steal(STAT, None), Some(123));
        assert_eq!(parse_steal(STAT, Some(0)), Some(58));
        assert_eq!(parse_steal(STAT, Some(1)), Some(65));
        // `cpu1` is not a prefix match of `cpu10`, nor the other way round.
        assert_eq!(parse_steal(STAT, Some(10)), Some(99));
        assert_eq!(parse_steal(STAT, Some(2)), None);
        // An old kernel's line without the steal column.
        assert_eq!(parse_steal("cpu  1 2 3 4 5 6 7\n", None), None);
        assert_eq!(parse_steal("", None), None);
        assert_eq!(parse_run_delay(SCHEDSTAT), Some(3527269));
        assert_eq!(parse_run_delay("88191\n"), None);
        assert_eq!(parse_run_delay("x y z"), None);
        assert_eq!(parse_nivcsw(STATUS), Some(17));
        assert_eq!(parse_nivcsw("voluntary_ctxt_switches:\t150\n"), None);
    }

    #[test]
    fn deltas_only_where_both_readings_have_the_counter() {
        let before = Reading {
            steal_ticks: Some(10),
            run_delay_ns: Some(1000),
            nivcsw: None,
        };
        let after = Reading {
            steal_ticks: Some(12),
            run_delay_ns: Some(1500),
            nivcsw: Some(3),
        };
        let d = before.delta(&after);
        assert_eq!(d.len(), 2);
        assert_eq!(d[STEAL_TICKS], 2);
        assert_eq!(d[RUN_DELAY_NS], 500);
        assert!(!d.contains_key(NIVCSW));
        assert!(Reading::default().delta(&after).is_empty());
    }

    #[test]
    fn a_missing_source_gives_no_counter() {
        // A thread that does not exist: every per-thread file is missing.
        let gone = Pid::from_raw(i32::MAX);
        let mut r = Reader::for_task(gone, gone, Some(0));
        let reading = r.read();
        assert_eq!(reading.run_delay_ns, None);
        assert_eq!(reading.nivcsw, None);
        let d = reading.delta(&r.read());
        assert!(
            !d.contains_key(RUN_DELAY_NS) && !d.contains_key(NIVCSW),
            "{d:?}"
        );
        // A CPU with no line in /proc/stat.
        let mut r = Reader::for_current_thread(Some(1000));
        assert_eq!(r.read().steal_ticks, None);
    }

    #[test]
    fn readings_are_fresh_and_of_the_right_thread() {
        std::thread::spawn(|| {
            let me = Pid::from_raw(std::process::id() as i32);
            let tid = gettid();
            let mut task = Reader::for_task(me, tid, Some(0));
            let mut current = Reader::for_current_thread(None);
            let (a, b) = (task.read(), current.read());
            for r in [a, b] {
                assert!(r.steal_ticks.is_some() && r.run_delay_ns.is_some(), "{r:?}");
                assert!(r.nivcsw.is_some(), "{r:?}");
            }
            // Both name the same thread's counters: the getrusage count and status agree.
            let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
            let from_status = parse_nivcsw(&status).unwrap();
            let after = current.read().nivcsw.unwrap();
            assert!((b.nivcsw.unwrap()..=after).contains(&from_status));
            // A re-read file is formatted afresh: after sleeping, the thread has run once
            // more (the 3rd field of schedstat) and switched voluntarily once more.
            let counts = |r: &mut Reader| {
                let Thread::Task { schedstat, status } = &r.thread else {
                    unreachable!()
                };
                let t = read_at_start(schedstat.as_ref(), &mut r.buf).unwrap();
                let slices: u64 = t.split_whitespace().nth(2).unwrap().parse().unwrap();
                let t = read_at_start(status.as_ref(), &mut r.buf).unwrap();
                let voluntary: u64 = t
                    .lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                (slices, voluntary)
            };
            let (s0, v0) = counts(&mut task);
            std::thread::sleep(Duration::from_millis(2));
            let (s1, v1) = counts(&mut task);
            assert!(s1 > s0 && v1 > v0, "{s0} -> {s1}, {v0} -> {v1}");
        })
        .join()
        .unwrap();
        // Read from another thread, a current-thread reader follows the thread it runs on.
        let mut r = Reader::for_current_thread(None);
        std::thread::spawn(move || {
            r.read();
            let Thread::Current { schedstat } = &r.thread else {
                unreachable!()
            };
            assert_eq!(schedstat.as_ref().unwrap().0, gettid());
        })
        .join()
        .unwrap();
    }

    use crate::env::median_us;

    /// What a reading costs (twice per invocation); `--nocapture` prints the medians.
    #[test]
    fn a_reading_costs_microseconds() {
        let me = Pid::from_raw(std::process::id() as i32);
        let mut task = Reader::for_task(me, me, Some(0));
        let mut current = Reader::for_current_thread(Some(0));
        let task_us = median_us(
            || {
                std::hint::black_box(task.read());
            },
            300,
        );
        let current_us = median_us(
            || {
                std::hint::black_box(current.read());
            },
            300,
        );
        eprintln!(
            "one reading, median of 300: runner-style (stat + schedstat + status) {task_us:.1} µs, \
             vm-style (stat + schedstat + getrusage) {current_us:.1} µs"
        );
        // Loose bounds: this is a shared, noisy machine; the point is µs, not ms.
        assert!(task_us < 500.0 && current_us < 500.0);
    }
}
