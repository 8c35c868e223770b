//! Claim 3, cgroups control resources: the blog's CPU hog in the built-in container under
//! `--cpus 0.1` (the image's own integer-hash kernel, the share of one CPU it got sampled
//! over time from the group's CPU accounting and from its own throughput), a memory limit
//! that the OOM killer enforces, a one-CPU cpuset; freezer pause/resume (`freezer.rs`) and an
//! IO read limit (`io_limit.rs`) where the controllers exist.
//! docs/CLAIMS.md explains each experiment.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{Finding, Verdict};
use crate::env::container::cgroup as cg;
use crate::env::container::{Container, ContainerOptions};
use crate::env::native::Native;
use crate::env::{EnvError, Environment, InstanceSpec};
use crate::stats::bootstrap;
use crate::workload::{self, Profile, Sizing, Span};

/// The CPU limit of the hog's container, in CPUs (the blog's 10%).
pub const CPUS: f64 = 0.1;
/// Hog invocations (each ~480 ms of CPU, so ~5 s of wall time at 10%).
pub const HOG_INVOCATIONS: usize = 3;
/// The window of one share sample.
pub const WINDOW: Duration = Duration::from_millis(500);
/// The share of one CPU counted as "held at 10%": ±1.5 percentage points.
pub const TOLERANCE: f64 = 0.015;
/// The memory limit that must stop a 256 MiB first touch, and the one that must not.
pub const MEMORY_LIMIT: u64 = 64 << 20;
pub const MEMORY_ROOMY: u64 = 1 << 30;

/// One sample of the hog's share of one CPU.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ShareSample {
    /// Seconds since the hog started (the window's end).
    pub t_s: f64,
    pub share: f64,
}

/// A share with its 95% interval.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Share {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct CpuEvidence {
    pub cpus: f64,
    pub cgroup_file: PathBuf,
    /// From the group's CPU accounting, per window.
    pub accounted: Vec<ShareSample>,
    /// From the hog's repetitions completed per window against its unlimited speed.
    pub throughput: Vec<ShareSample>,
    pub accounted_share: Share,
    pub throughput_share: Share,
    /// The hog's CPU time over its wall time, all invocations together.
    pub overall_accounted: f64,
    /// Median ns of one repetition natively (unlimited), the throughput reference.
    pub native_rep_ns: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryEvidence {
    pub limit_bytes: u64,
    pub touched_bytes: u64,
    /// The invocation's error under the limit (`None`: it was not stopped).
    pub limited_error: Option<String>,
    pub killed_by_oom: bool,
    /// The same touch under a roomy limit: its peak memory, or its error.
    pub roomy_peak_bytes: Option<u64>,
    pub roomy_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CgroupEvidence {
    pub cpu: Result<CpuEvidence, String>,
    pub memory: Result<MemoryEvidence, String>,
    /// `Err`: why it could not be tested here.
    pub freezer: Result<super::freezer::FreezerEvidence, String>,
    /// `Err`: why the cpuset could not be tested here.
    pub cpuset: Result<CpusetEvidence, String>,
    /// `Err`: why the IO limit could not be tested here.
    pub io: Result<super::io_limit::IoEvidence, String>,
}

fn spec(scratch: &Path, work_size: u64) -> InstanceSpec {
    InstanceSpec {
        work_size: work_size.next_multiple_of(2 << 20),
        disk_size: 0,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(60),
        thp: false,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

/// Run every part of claim 3.
pub fn observe(scratch: &Path, seed: u64) -> Result<CgroupEvidence> {
    Container::probe()
        .map_err(|reason| anyhow::anyhow!("claim 3 needs the built-in container: {reason}"))?;
    let text = |e: anyhow::Error| format!("{e:#}");
    Ok(CgroupEvidence {
        cpu: cpu_share(scratch, seed).map_err(text),
        memory: memory_limit(scratch, seed).map_err(text),
        freezer: super::freezer::observe().map_err(text),
        cpuset: cpuset(scratch).map_err(text),
        io: super::io_limit::observe(scratch, seed).map_err(text),
    })
}

/// The file holding the group's CPU time so far, and whether it is v1's `cpuacct.usage` (ns)
/// rather than v2's `cpu.stat` (`usage_usec`).
fn cpu_usage_file(dirs: &[PathBuf]) -> Option<(PathBuf, bool)> {
    // v1: cpuacct.usage (the cpu hierarchy's own cpu.stat has only throttling counts).
    let v1 = dirs
        .iter()
        .map(|d| d.join("cpuacct.usage"))
        .find(|f| f.exists());
    v1.map(|f| (f, true)).or_else(|| {
        dirs.iter()
            .map(|d| d.join("cpu.stat"))
            .find(|f| cg::keyed_value(f, "usage_usec").is_some())
            .map(|f| (f, false))
    })
}

fn read_usage_ns(file: &Path, v1: bool) -> Option<u64> {
    if v1 {
        cg::read_u64(file)
    } else {
        cg::keyed_value(file, "usage_usec").map(|u| u * 1000)
    }
}

fn share_of(samples: &[ShareSample], seed: u64) -> Share {
    let v: Vec<f64> = samples.iter().map(|s| s.share).collect();
    if v.is_empty() {
        return Share {
            mean: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
            n: 0,
        };
    }
    let e = bootstrap::estimate_mean(&v, 2000, seed);
    Share {
        mean: e.mean,
        low: e.ci95.low,
        high: e.ci95.high,
        n: v.len(),
    }
}

/// The CPU hog under `--cpus 0.1`, sampled over time.
pub fn cpu_share(scratch: &Path, seed: u64) -> Result<CpuEvidence> {
    let w = workload::by_name("cpu.int").context("the cpu.int workload is missing")?;
    let p = (w.prepare)(
        Sizing {
            profile: Profile::Quick,
            span: Span::CfsSafe,
        },
        seed,
    );
    let tsc_hz = crate::tsc::calibrate(Duration::from_millis(50));
    let sp = spec(scratch, p.work_bytes);

    // The hog's unlimited speed: one invocation natively.
    let mut native = Native::new("native");
    native
        .start(&sp)
        .context("starting the native reference of claim 3")?;
    let reference = native.invoke(&p.invocation);
    native.stop()?;
    let reference = reference.context("running the hog natively")?;
    let mut reps: Vec<f64> = reference.records.iter().map(|&c| c as f64).collect();
    anyhow::ensure!(!reps.is_empty(), "the hog returned no repetitions");
    reps.sort_by(f64::total_cmp);
    let native_rep_ns = crate::stats::summary::median(&reps) / tsc_hz * 1e9;

    let mut c = Container::new(
        "container",
        ContainerOptions {
            cpus: Some(CPUS),
            ..Default::default()
        },
    );
    c.start(&sp)
        .context("starting the --cpus 0.1 container of claim 3")?;
    let result = hog(&mut c, &p.invocation, tsc_hz, native_rep_ns, seed);
    let stopped = c.stop();
    let e = result?;
    stopped?;
    Ok(e)
}

fn hog(
    c: &mut Container,
    inv: &crate::image::Invocation,
    tsc_hz: f64,
    native_rep_ns: f64,
    seed: u64,
) -> Result<CpuEvidence> {
    let (file, v1) = cpu_usage_file(&c.cgroup_dirs())
        .context("the container's cgroup has no CPU accounting (cpuacct.usage or cpu.stat)")?;
    let done = AtomicBool::new(false);
    let t0 = Instant::now();
    let tsc0 = crate::tsc::now();
    let mut runs = Vec::new();
    let accounted = std::thread::scope(|s| -> Result<Vec<ShareSample>> {
        let sampler = s.spawn(|| {
            let mut out = Vec::new();
            let mut last = (Instant::now(), read_usage_ns(&file, v1));
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(WINDOW);
                let now = (Instant::now(), read_usage_ns(&file, v1));
                if let (Some(a), Some(b)) = (now.1, last.1) {
                    let dt = now.0.duration_since(last.0).as_secs_f64();
                    out.push(ShareSample {
                        t_s: now.0.duration_since(t0).as_secs_f64(),
                        share: a.saturating_sub(b) as f64 / 1e9 / dt,
                    });
                }
                last = now;
            }
            out
        });
        let mut failed = None;
        for _ in 0..HOG_INVOCATIONS {
            let start = crate::tsc::now();
            match c.invoke(inv) {
                Ok(r) => runs.push((start, r)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        done.store(true, Ordering::SeqCst);
        let samples = sampler.join().unwrap_or_default();
        if let Some(e) = failed {
            return Err(anyhow::Error::new(e).context("running the hog in the container"));
        }
        Ok(samples)
    })?;
    let elapsed = t0.elapsed().as_secs_f64();
    // Drop the last window when it is mostly idle tail (after the last invocation).
    let accounted: Vec<ShareSample> = accounted
        .into_iter()
        .filter(|s| s.t_s <= elapsed - WINDOW.as_secs_f64() / 2.0)
        .collect();

    // Throughput: repetition ends on the TSC timeline, counted per window.
    let mut ends = Vec::new();
    let (mut cpu_ns, mut wall_ns) = (0u64, 0u64);
    for (start, r) in &runs {
        let mut t = *start;
        for &lap in &r.records {
            t += lap;
            ends.push((t - tsc0) as f64 / tsc_hz);
        }
        cpu_ns += r.counters.get("cgroup.cpu_usage_ns").copied().unwrap_or(0);
        wall_ns += r.wall_ns;
    }
    let last_end = ends.iter().copied().fold(0.0, f64::max);
    let window = WINDOW.as_secs_f64();
    let first_start = runs
        .first()
        .map(|(s, _)| (s - tsc0) as f64 / tsc_hz)
        .unwrap_or(0.0);
    let mut throughput = Vec::new();
    let mut w0 = first_start;
    while w0 + window <= last_end {
        let n = ends.iter().filter(|&&e| e > w0 && e <= w0 + window).count();
        throughput.push(ShareSample {
            t_s: w0 + window,
            share: n as f64 * native_rep_ns / 1e9 / window,
        });
        w0 += window;
    }
    Ok(CpuEvidence {
        cpus: CPUS,
        cgroup_file: file,
        accounted_share: share_of(&accounted, seed),
        throughput_share: share_of(&throughput, seed ^ 1),
        accounted,
        throughput,
        overall_accounted: if wall_ns > 0 {
            cpu_ns as f64 / wall_ns as f64
        } else {
            f64::NAN
        },
        native_rep_ns,
    })
}

/// A 256 MiB first touch under a 64 MiB limit, and under a roomy one.
pub fn memory_limit(scratch: &Path, seed: u64) -> Result<MemoryEvidence> {
    let w = workload::by_name("mem.touch").context("the mem.touch workload is missing")?;
    let p = (w.prepare)(
        Sizing {
            profile: Profile::Full,
            span: Span::Short,
        },
        seed,
    );
    let touch = |limit: u64| -> Result<Result<Option<u64>, EnvError>> {
        let mut c = Container::new(
            "container",
            ContainerOptions {
                memory: Some(limit),
                ..Default::default()
            },
        );
        c.start(&spec(scratch, p.work_bytes))
            .with_context(|| format!("starting a container with a {limit}-byte memory limit"))?;
        let r = c
            .invoke(&p.invocation)
            .map(|raw| raw.counters.get("cgroup.memory_peak_bytes").copied());
        c.stop()?;
        Ok(r)
    };
    let limited = touch(MEMORY_LIMIT)?;
    let roomy = touch(MEMORY_ROOMY)?;
    let limited_error = limited.err().map(|e| e.to_string());
    Ok(MemoryEvidence {
        limit_bytes: MEMORY_LIMIT,
        touched_bytes: p.work_bytes,
        killed_by_oom: limited_error
            .as_deref()
            .is_some_and(|e| e.contains("OOM killer")),
        limited_error,
        roomy_peak_bytes: roomy.as_ref().ok().copied().flatten(),
        roomy_error: roomy.err().map(|e| e.to_string()),
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct CpusetEvidence {
    /// The CPUs this process may use, and the one-CPU set the container was given.
    pub host_cpus: String,
    pub cpuset: String,
    /// `Cpus_allowed_list` of the container's first process.
    pub allowed_inside: String,
}

/// A container with `--cpuset` of one CPU: the CPUs its first process may run on.
pub fn cpuset(scratch: &Path) -> Result<CpusetEvidence> {
    let host = crate::env::affinity::current_thread_cpus()
        .context("reading this process's CPU affinity")?;
    let Some(last) = host.iter().next_back().copied().filter(|_| host.len() >= 2) else {
        bail!("this process may use only one CPU, so a cpuset cannot restrict anything");
    };
    let mut c = Container::new(
        "container",
        ContainerOptions {
            cpuset: Some(last.to_string()),
            ..Default::default()
        },
    );
    c.start(&spec(scratch, 2 << 20))
        .context("starting a container with a one-CPU cpuset")?;
    let allowed = c
        .runner_pid()
        .context("the cpuset container has no process")
        .and_then(|pid| {
            let p = format!("/proc/{pid}/status");
            let text = std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?;
            text.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
                .with_context(|| format!("{p} has no Cpus_allowed_list"))
        });
    c.stop()?;
    Ok(CpusetEvidence {
        host_cpus: crate::env::affinity::format_cpu_list(&host),
        cpuset: last.to_string(),
        allowed_inside: allowed?,
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The verdict on a measured share of one CPU against the limit.
pub fn share_verdict(s: &Share, limit: f64) -> Verdict {
    if !(s.low.is_finite() && s.high.is_finite()) {
        return Verdict::Inconclusive {
            settle: "no share sample was taken; run the hog longer".into(),
        };
    }
    if s.low >= limit - TOLERANCE && s.high <= limit + TOLERANCE {
        Verdict::Supported
    } else if s.low > limit + TOLERANCE {
        Verdict::Refuted
    } else if s.high < limit - TOLERANCE {
        Verdict::Inconclusive {
            settle: format!("the hog got less than its {} quota, so the CPU was contended: repeat on a quiet machine", pct(limit)),
        }
    } else {
        Verdict::Inconclusive {
            settle: "the interval straddles the tolerance band: run the hog longer".into(),
        }
    }
}

/// The findings of claim 3.
pub fn findings(e: &CgroupEvidence) -> Vec<Finding> {
    let mut f = Vec::new();
    match &e.cpu {
        Ok(c) => {
            let sh = |s: &Share| {
                format!(
                    "mean {} of one CPU, 95% CI [{}, {}], n={} windows of {} ms",
                    pct(s.mean),
                    pct(s.low),
                    pct(s.high),
                    s.n,
                    WINDOW.as_millis()
                )
            };
            f.push(Finding {
                subject: format!("CPU --cpus {} (cgroup accounting)", c.cpus),
                evidence: format!(
                    "{} ({}); over all invocations {}",
                    sh(&c.accounted_share),
                    c.cgroup_file.display(),
                    pct(c.overall_accounted)
                ),
                verdict: share_verdict(&c.accounted_share, c.cpus),
            });
            f.push(Finding {
                subject: format!("CPU --cpus {} (hog throughput)", c.cpus),
                evidence: format!(
                    "{} (repetitions completed against the unlimited speed, {:.0} µs per repetition natively)",
                    sh(&c.throughput_share),
                    c.native_rep_ns / 1e3
                ),
                verdict: share_verdict(&c.throughput_share, c.cpus),
            });
        }
        Err(err) => f.push(Finding {
            subject: "CPU --cpus 0.1".into(),
            evidence: err.clone(),
            verdict: Verdict::Inconclusive {
                settle: "fix the error above and run `isobench claims --claim 3` again".into(),
            },
        }),
    }
    match &e.memory {
        Ok(m) => f.push(Finding {
            subject: format!("memory limit {} MiB", m.limit_bytes >> 20),
            evidence: format!(
                "touching {} MiB under the limit: {}; under a {} MiB limit: {}",
                m.touched_bytes >> 20,
                m.limited_error.as_deref().unwrap_or("NOT stopped"),
                MEMORY_ROOMY >> 20,
                match (&m.roomy_peak_bytes, &m.roomy_error) {
                    (_, Some(err)) => format!("failed too ({err})"),
                    (Some(p), None) => format!("completed, peak {} MiB", p >> 20),
                    (None, None) => "completed".into(),
                }
            ),
            verdict: if m.killed_by_oom && m.roomy_error.is_none() {
                Verdict::Supported
            } else if m.limited_error.is_none() {
                Verdict::Refuted
            } else {
                Verdict::Inconclusive {
                    settle: "the touch failed, but not by the OOM killer, or failed under the roomy limit too; read the errors".into(),
                }
            },
        }),
        Err(err) => f.push(Finding {
            subject: "memory limit".into(),
            evidence: err.clone(),
            verdict: Verdict::Inconclusive {
                settle: "fix the error above and run `isobench claims --claim 3` again".into(),
            },
        }),
    }
    match &e.freezer {
        Ok(z) => f.push(Finding {
            subject: format!("freezer ({})", z.interface),
            evidence: format!(
                "a busy process's CPU time over {:.0} ms: running {:.1} ms, frozen {:.1} ms, thawed {:.1} ms",
                z.phase_ms, z.running_ms, z.frozen_ms, z.thawed_ms
            ),
            verdict: if z.frozen_ms < 1.0 && z.thawed_ms > 10.0 && z.running_ms > 10.0 {
                Verdict::Supported
            } else if z.frozen_ms >= 1.0 {
                Verdict::Refuted
            } else {
                Verdict::Inconclusive {
                    settle: "the process got almost no CPU while running or thawed: the machine was busy; repeat".into(),
                }
            },
        }),
        Err(reason) => f.push(Finding {
            subject: "freezer".into(),
            evidence: String::new(),
            verdict: Verdict::NotTestable {
                reason: reason.clone(),
            },
        }),
    }
    f.push(match &e.cpuset {
        Ok(z) => Finding {
            subject: format!("cpuset {}", z.cpuset),
            evidence: format!(
                "the container's first process may run on CPU(s) {} (this process: {})",
                z.allowed_inside, z.host_cpus
            ),
            verdict: if z.allowed_inside == z.cpuset {
                Verdict::Supported
            } else {
                Verdict::Refuted
            },
        },
        Err(reason) => Finding {
            subject: "cpuset".into(),
            evidence: String::new(),
            verdict: Verdict::NotTestable {
                reason: reason.clone(),
            },
        },
    });
    f.push(super::io_limit::finding(&e.io));
    f
}
