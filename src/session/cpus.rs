//! Which CPU the measured instances run on, and keeping the harness off it: the CPUs of a
//! cloud VM are not equal and the harness's own work would disturb the samples
//! (docs/METHODOLOGY.md, "Pinning").

use anyhow::{bail, Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::plan::CpuChoice;

/// The CPUs of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinning {
    /// The CPU of every measured instance (`None`: not pinned).
    pub measured: Option<usize>,
    /// The CPUs the harness keeps to while it measures.
    pub harness: Vec<usize>,
    /// The CPU of each thread of `--threads`, `measured` first (empty: not pinned).
    pub threads: Vec<usize>,
}

/// The CPUs this thread may use.
fn allowed() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).context("reading this process's CPU affinity")?;
    Ok((0..CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect())
}

/// Resolve `choice` against the CPUs isobench may use.
pub fn resolve(choice: CpuChoice) -> Result<Pinning> {
    let allowed = allowed()?;
    let measured = match choice {
        CpuChoice::None => None,
        CpuChoice::Auto => (allowed.len() >= 2).then(|| *allowed.last().unwrap()),
        CpuChoice::Cpu(n) => {
            if !allowed.contains(&n) {
                // Bad usage (exit 2), like every other invalid flag.
                return Err(crate::plan::PlanError::CpuNotAllowed {
                    cpu: n,
                    allowed: list(&allowed),
                }
                .into());
            }
            Some(n)
        }
    };
    let others: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| Some(*c) != measured)
        .collect();
    Ok(Pinning {
        measured,
        threads: measured.into_iter().collect(),
        // With a single CPU the harness has nowhere else to go.
        harness: if others.is_empty() { allowed } else { others },
    })
}

/// Resolve `choice` for `threads` threads: thread 0 on the measured CPU, the others on the
/// next allowed CPUs below it (wrapping around), one CPU each; the harness keeps to the rest
/// (or, when the threads take every CPU, shares them: it only waits while they measure).
pub fn resolve_threads(choice: CpuChoice, threads: u32) -> Result<Pinning> {
    let mut p = resolve(choice)?;
    let allowed = allowed()?;
    let n = threads.max(1) as usize;
    if n > allowed.len() {
        bail!(
            "--threads {threads}: isobench may use only {} CPU(s) ({}): one thread per CPU, so choose --threads {} or fewer",
            allowed.len(),
            list(&allowed),
            allowed.len()
        );
    }
    let Some(first) = p.measured else {
        return Ok(p);
    };
    let at = allowed.iter().position(|c| *c == first).unwrap_or(0);
    p.threads = (0..n)
        .map(|i| allowed[(at + allowed.len() - i) % allowed.len()])
        .collect();
    let rest: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !p.threads.contains(c))
        .collect();
    if n > 1 {
        p.harness = if rest.is_empty() { allowed } else { rest };
    }
    Ok(p)
}

/// Keeps the calling thread (the harness) on `cpus` until dropped, then restores the
/// affinity it had.
pub struct HarnessPin {
    before: CpuSet,
}

impl HarnessPin {
    pub fn new(cpus: &[usize]) -> Result<HarnessPin> {
        let before = sched_getaffinity(Pid::from_raw(0)).context("reading the CPU affinity")?;
        sched_setaffinity(Pid::from_raw(0), &set_of(cpus)?)
            .with_context(|| format!("keeping the harness on CPU(s) {}", list(cpus)))?;
        Ok(HarnessPin { before })
    }
}

impl Drop for HarnessPin {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.before);
    }
}

fn set_of(cpus: &[usize]) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for c in cpus {
        set.set(*c)
            .with_context(|| format!("CPU {c} is out of range"))?;
    }
    Ok(set)
}

/// `0,2-3` style list.
pub fn list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(list(&[3]), "3");
        assert_eq!(list(&[]), "");
    }

    #[test]
    fn threads_take_one_allowed_cpu_each_and_no_more() {
        let allowed = allowed().unwrap();
        let n = allowed.len() as u32;
        let p = resolve_threads(CpuChoice::Auto, n).unwrap();
        if n >= 2 {
            assert_eq!(p.threads.len(), n as usize);
            assert_eq!(p.threads[0], p.measured.unwrap());
            let mut sorted = p.threads.clone();
            sorted.sort();
            assert_eq!(sorted, allowed);
        }
        let err = resolve_threads(CpuChoice::Auto, n + 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("--threads {}", n + 1)), "{err}");
        assert!(err.contains("or fewer"), "{err}");
    }

    #[test]
    fn choices_resolve_against_the_allowed_cpus() {
        let allowed = allowed().unwrap();
        let none = resolve(CpuChoice::None).unwrap();
        assert_eq!(none.measured, None);
        let auto = resolve(CpuChoice::Auto).unwrap();
        if allowed.len() >= 2 {
            assert_eq!(auto.measured, allowed.last().copied());
            assert!(!auto.harness.contains(&auto.measured.unwrap()));
        }
        let e = resolve(CpuChoice::Cpu(100_000)).unwrap_err().to_string();
        assert!(e.contains("--cpu 100000"), "{e}");
    }

    #[test]
    fn the_harness_pin_is_undone() {
        let before = allowed().unwrap();
        {
            let _pin = HarnessPin::new(&before[..1]).unwrap();
            assert_eq!(allowed().unwrap(), before[..1]);
        }
        assert_eq!(allowed().unwrap(), before);
    }
}
