//! Pinning an instance's measuring thread to one CPU (`InstanceSpec::cpu`): CPU lists as the
//! kernel writes them, which CPUs are online, and moving a thread onto one CPU and back.
//!
//! A runner pins itself in the child ([`pin_child`], fork-safe); the vm pins the thread that
//! runs `KVM_RUN` for the length of one invocation ([`pin_current_thread`]) and keeps its
//! watchdog thread off that CPU ([`avoid_on_current_thread`]).

use std::collections::BTreeSet;

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The largest CPU number a list may name here (ranges are expanded into a set).
const MAX_CPU: usize = 1 << 16;

/// Parse a kernel CPU list: `0-1,3` (`cpuset.cpus`, `/sys/devices/system/cpu/online`,
/// `Cpus_allowed_list`). Blank is the empty set; anything malformed is `None`.
pub fn parse_cpu_list(s: &str) -> Option<BTreeSet<usize>> {
    let mut set = BTreeSet::new();
    let s = s.trim();
    if s.is_empty() {
        return Some(set);
    }
    for part in s.split(',') {
        let (a, b): (usize, usize) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let a = part.trim().parse().ok()?;
                (a, a)
            }
        };
        if a > b || b > MAX_CPU {
            return None;
        }
        set.extend(a..=b);
    }
    Some(set)
}

/// A set written back as a kernel CPU list, ranges merged (`0-1,3`).
pub fn format_cpu_list(set: &BTreeSet<usize>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The online CPUs (`/sys/devices/system/cpu/online`); `None` when that cannot be read.
pub fn online_cpus() -> Option<BTreeSet<usize>> {
    parse_cpu_list(&std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?)
}

/// Why `cpu` cannot be pinned to, if that is known before trying: a CPU number beyond what a
/// CPU set holds, or a CPU that is not online. (A CPU this process may not use, through
/// `taskset` or its cgroup's cpuset, shows only when pinning fails.)
pub fn check_cpu(cpu: usize) -> Result<(), String> {
    if cpu >= CpuSet::count() {
        return Err(format!(
            "CPU {cpu} is beyond the {} CPUs a CPU set can name",
            CpuSet::count()
        ));
    }
    match online_cpus() {
        Some(online) if !online.contains(&cpu) => Err(format!(
            "CPU {cpu} is not online on this machine (online: {}): pick --cpu among those",
            format_cpu_list(&online)
        )),
        _ => Ok(()),
    }
}

/// A CPU set holding `cpu` alone.
pub fn single(cpu: usize) -> Result<CpuSet, Errno> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    Ok(set)
}

/// The CPUs of a CPU set.
pub fn members(set: &CpuSet) -> BTreeSet<usize> {
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// Child side, right after `fork`/`clone` (no allocation, no locks): pin the calling
/// process, whose only thread this is, to `cpu`. False when the kernel refuses.
pub fn pin_child(cpu: usize) -> bool {
    match single(cpu) {
        Ok(set) => sched_setaffinity(Pid::from_raw(0), &set).is_ok(),
        Err(_) => false,
    }
}

/// The calling thread, pinned to one CPU until this is dropped; then it gets back the
/// affinity it had before.
#[must_use = "the thread is unpinned when this is dropped"]
pub struct Pinned {
    previous: CpuSet,
}

/// Pin the calling thread to `cpu` (the kernel moves it there before this returns) and
/// remember its affinity, restored when the guard is dropped.
pub fn pin_current_thread(cpu: usize) -> Result<Pinned, Errno> {
    let previous = sched_getaffinity(Pid::from_raw(0))?;
    sched_setaffinity(Pid::from_raw(0), &single(cpu)?)?;
    Ok(Pinned { previous })
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // The previous set was valid a moment ago; should a CPU have gone offline since, the
        // thread simply stays pinned, which is harmless.
        let _ = sched_setaffinity(Pid::from_raw(0), &self.previous);
    }
}

/// Keep the calling thread off `cpu`: its affinity minus `cpu`. When that would leave no
/// CPU (the process may run only on `cpu`), the affinity stays as it is and this says false.
pub fn avoid_on_current_thread(cpu: usize) -> Result<bool, Errno> {
    let mut set = sched_getaffinity(Pid::from_raw(0))?;
    if set.is_set(cpu).unwrap_or(false) {
        set.unset(cpu)?;
    }
    if members(&set).is_empty() {
        return Ok(false);
    }
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(true)
}

/// The CPUs the calling thread may run on.
pub fn current_thread_cpus() -> Result<BTreeSet<usize>, Errno> {
    Ok(members(&sched_getaffinity(Pid::from_raw(0))?))
}

/// Test support: where a thread may run and where it is, seen from outside through
/// `/proc`, sampled while something runs; and a child-side probe of its own affinity.
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) mod observe {
    use std::collections::BTreeSet;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::parse_cpu_list;

    /// Where a thread may run (`Cpus_allowed_list`) and the CPU it runs or last ran on (the
    /// 39th field of its `stat`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Placement {
        pub allowed: BTreeSet<usize>,
        pub on: usize,
    }

    /// The placement of thread `tid` of process `pid`; `None` once it is gone.
    pub fn placement(pid: i32, tid: i32) -> Option<Placement> {
        let dir = format!("/proc/{pid}/task/{tid}");
        let allowed = allowed_in_status(&std::fs::read_to_string(format!("{dir}/status")).ok()?)?;
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the command name, which may hold spaces, start at field 3 (state).
        let on = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(39 - 3)?
            .parse()
            .ok()?;
        Some(Placement { allowed, on })
    }

    /// Run `f` here while another thread samples the placement of `pid`/`tid` about every
    /// millisecond; `f`'s result and the samples, in order.
    pub fn sample_while<T>(pid: i32, tid: i32, f: impl FnOnce() -> T) -> (T, Vec<Placement>) {
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let sampler = s.spawn(|| {
                let mut seen = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    seen.extend(placement(pid, tid));
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen
            });
            let out = f();
            done.store(true, Ordering::SeqCst);
            (out, sampler.join().unwrap())
        })
    }

    /// A thread spinning on `cpu` until dropped: interference for the counters to see.
    pub struct Competitor {
        stop: std::sync::Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    pub fn compete_on(cpu: usize) -> Competitor {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let (ready_w, ready_r) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _pinned = super::pin_current_thread(cpu).unwrap();
            ready_w.send(()).unwrap();
            while !s.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        ready_r.recv().unwrap();
        Competitor {
            stop,
            thread: Some(thread),
        }
    }

    impl Drop for Competitor {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// A `ChildBody::Probe` body: copy `/proc/self/status` (its `Cpus_allowed_list`
    /// included) to the pipe. Raw system calls only (it runs right after a fork).
    pub fn report_status(fd: RawFd) {
        // SAFETY: open/read/write/close on a NUL-terminated path and a stack buffer.
        unsafe {
            let f = libc::open(c"/proc/self/status".as_ptr(), libc::O_RDONLY);
            if f < 0 {
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                let n = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 || libc::write(fd, buf.as_ptr().cast(), n as usize) != n {
                    break;
                }
            }
            libc::close(f);
        }
    }

    /// What a [`report_status`] probe wrote, read until its `Cpus_allowed_list` line is
    /// complete (not to the end of the pipe: a runner forked meanwhile by a concurrent test
    /// may hold a copy of the write end), the end of the pipe, or `timeout`.
    pub fn read_status(fd: &OwnedFd, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let complete = |out: &[u8]| {
            let text = String::from_utf8_lossy(out);
            text.split_once("Cpus_allowed_list:")
                .is_some_and(|(_, rest)| rest.contains('\n'))
        };
        while !complete(&out) {
            if !matches!(crate::env::process::wait_readable(fd, end), Ok(true)) {
                break;
            }
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The `Cpus_allowed_list` in a status file's text.
    pub fn allowed_in_status(text: &str) -> Option<BTreeSet<usize>> {
        text.lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .and_then(parse_cpu_list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[usize]) -> BTreeSet<usize> {
        v.iter().copied().collect()
    }

    #[test]
    fn cpu_lists_parse_and_format_as_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(set(&[0, 1])));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(set(&[0, 1, 2, 5, 7, 8])));
        assert_eq!(parse_cpu_list("3"), Some(set(&[3])));
        assert_eq!(parse_cpu_list(" \n"), Some(set(&[])));
        for bad in ["a", "1-", "-1", "2-1", "0,,1", "0-99999999"] {
            assert_eq!(parse_cpu_list(bad), None, "{bad}");
        }
        assert_eq!(format_cpu_list(&set(&[0, 1, 2, 5, 7, 8])), "0-2,5,7-8");
        assert_eq!(format_cpu_list(&set(&[1])), "1");
        assert_eq!(format_cpu_list(&set(&[])), "");
    }

    #[test]
    fn an_offline_or_impossible_cpu_is_refused_before_pinning() {
        let online = online_cpus().expect("/sys/devices/system/cpu/online");
        let first = *online.iter().next().unwrap();
        assert_eq!(check_cpu(first), Ok(()));
        let missing = online.iter().max().unwrap() + 1;
        if missing < CpuSet::count() {
            let e = check_cpu(missing).unwrap_err();
            assert!(e.contains("not online") && e.contains("--cpu"), "{e}");
        }
        let e = check_cpu(CpuSet::count()).unwrap_err();
        assert!(e.contains("beyond"), "{e}");
    }

    use crate::env::median_us;

    /// What the vm's per-invocation pin and restore cost (outside the timed region);
    /// `--nocapture` prints the medians.
    #[test]
    fn pin_and_restore_cost_microseconds() {
        std::thread::spawn(|| {
            let cpus: Vec<usize> = current_thread_cpus().unwrap().into_iter().collect();
            let cpu = *cpus.last().unwrap();
            // The harness thread may run anywhere: after the first move it stays on the CPU,
            // and a pin and restore is three system calls.
            let free = median_us(|| drop(pin_current_thread(cpu).unwrap()), 300);
            // The harness thread kept on another CPU: every pin and restore moves it there
            // and back.
            let moved = cpus.iter().find(|&&c| c != cpu).map(|&home| {
                let _home = pin_current_thread(home).unwrap();
                median_us(|| drop(pin_current_thread(cpu).unwrap()), 300)
            });
            eprintln!(
                "pin to CPU {cpu} and restore, median of 300: {free:.1} µs with the thread free to stay; {} when it lives on another CPU (two migrations)",
                moved.map_or("-".into(), |m| format!("{m:.1} µs"))
            );
            assert!(free < 1000.0 && moved.unwrap_or(0.0) < 5000.0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn pinning_the_current_thread_is_undone_when_dropped() {
        // On a thread of its own, so the test harness's threads are untouched.
        std::thread::spawn(|| {
            let before = current_thread_cpus().unwrap();
            let cpu = *before.iter().max().unwrap();
            {
                let _p = pin_current_thread(cpu).unwrap();
                assert_eq!(current_thread_cpus().unwrap(), set(&[cpu]));
                let on = nix::sched::sched_getcpu().unwrap();
                assert_eq!(on, cpu, "the kernel moved the thread before returning");
            }
            assert_eq!(current_thread_cpus().unwrap(), before);
            if before.len() > 1 {
                assert!(avoid_on_current_thread(cpu).unwrap());
                let now = current_thread_cpus().unwrap();
                assert!(!now.contains(&cpu) && !now.is_empty(), "{now:?}");
            }
            let only = *current_thread_cpus().unwrap().iter().next().unwrap();
            let _p = pin_current_thread(only).unwrap();
            assert!(
                !avoid_on_current_thread(only).unwrap(),
                "nothing else is left"
            );
            assert_eq!(current_thread_cpus().unwrap(), set(&[only]));
        })
        .join()
        .unwrap();
    }
}
