//! Fault injection (docs/RELIABILITY.md): N tiny runs of native, container and vm, each hit
//! by SIGINT, SIGTERM or SIGKILL at a seeded random moment, each followed by a check that the
//! machine is as it was (after `isobench clean` for SIGKILL) and that the stored files parse.
//!
//! `ISOBENCH_FAULTS=N` sets the number of runs (default 20), `ISOBENCH_FAULT_SEED=S` the seed
//! (default 16). The test prints one `faults:` line per run and a `faults summary:` line with
//! the figures of the table in docs/RELIABILITY.md.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use isobench::results::{read_run, read_samples, RUN_JSON, SAMPLES_CSV};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::{Rng, SeedableRng};

/// The longest a run may take to stop after SIGINT or SIGTERM (the bound).
const STOP_WITHIN: Duration = Duration::from_secs(1);

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn isobench() -> Command {
    Command::cargo_bin("isobench").expect("the isobench binary is built")
}

/// A tiny run of every environment: a few workloads, 2 blocks, no warm-up.
fn start_run(out: &Path, seed: u64) -> Child {
    isobench()
        .args([
            "run",
            "--env",
            "native,container,vm",
            "--strict",
            "--workload",
            "cpu.int,io.seq,sys.call,start",
            "--rounds",
            "2",
            "--warmup",
            "0",
            "--deadline",
            "20",
        ])
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("isobench starts")
}

/// PID and start time (field 22 of /proc/PID/stat) of every live descendant of `root`.
fn descendants(root: i32) -> Vec<(i32, u64)> {
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let (Some(ppid), Some(start)) = (
            fields.get(1).and_then(|v| v.parse::<i32>().ok()),
            fields.get(19).and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        procs.push((pid, ppid, start));
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, start) in &procs {
            if ppid == p {
                found.push((pid, start));
                frontier.push(pid);
            }
        }
    }
    found
}

/// Whether a process with this PID and start time still exists (and is not a zombie).
fn alive(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    fields.first() != Some(&"Z") && fields.get(19).and_then(|v| v.parse().ok()) == Some(start)
}

/// What run `pid` left on the host: mounts, cgroups and state markers named after it.
fn host_leftovers(pid: u32) -> Vec<String> {
    let me = format!("isobench-{pid}-");
    let mut found: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&me))
        .map(|l| format!("mount: {l}"))
        .collect();
    fn walk(dir: &Path, depth: u32, me: &str, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                if e.file_name().to_string_lossy().starts_with(me) {
                    found.push(format!("cgroup: {}", p.display()));
                }
                if depth > 0 {
                    walk(&p, depth - 1, me, found);
                }
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), 6, &me, &mut found);
    if let Ok(rd) = std::fs::read_dir("/run/isobench") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&me) {
                found.push(format!("marker: {}", e.path().display()));
            }
        }
    }
    found
}

/// Entries under the scratch area (`OUT/.scratch`): a run's scratch directory and the
/// containers' layers in it.
fn scratch_entries(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out.join(".scratch"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The run directory under `out`, if the run got as far as creating it.
fn run_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
}

/// Wait for `child` up to `limit`; kill and reap it past that (so it never outlives the test).
fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[derive(Default)]
struct Tally {
    injected: u32,
    finished_first: u32,
    by_signal: [u32; 3],
    leftovers_after_signal: u32,
    removed_by_clean: u32,
    leftovers_at_end: u32,
    files_checked: u32,
    max_stop: Duration,
}

#[test]
fn runs_killed_at_random_moments_leave_nothing_and_keep_valid_files() {
    let n = env_u64("ISOBENCH_FAULTS", 20);
    let seed = env_u64("ISOBENCH_FAULT_SEED", 16);
    assert!(n >= 1, "ISOBENCH_FAULTS must be at least 1");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // The first run, undisturbed, measures how long a run takes here: the faults land
    // uniformly over that time.
    let calib = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut child = start_run(calib.path(), seed);
    let status = wait_within(&mut child, Duration::from_secs(300)).expect("a tiny run ends");
    let full = t0.elapsed();
    let stderr = child
        .stderr
        .take()
        .map(|mut e| {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            s
        })
        .unwrap_or_default();
    assert!(status.success(), "the undisturbed run failed: {stderr}");
    assert!(host_leftovers(child.id()).is_empty() && scratch_entries(calib.path()).is_empty());
    println!("faults: an undisturbed run takes {full:?}");

    let signals = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL];
    let mut t = Tally::default();
    for i in 0..n {
        let out = tempfile::tempdir().unwrap();
        let which = rng.gen_range(0..3);
        let sig = signals[which];
        let at = full.mul_f64(rng.gen_range(0.0..1.0));
        let mut child = start_run(out.path(), seed + i);
        let pid = child.id();
        std::thread::sleep(at);
        let kids = descendants(pid as i32);
        let sent = Instant::now();
        let delivered =
            child.try_wait().unwrap().is_none() && kill(Pid::from_raw(pid as i32), sig).is_ok();
        let status = wait_within(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("run {i}: no end within 60 s of {sig}"));
        let stop = sent.elapsed();
        if !delivered || status.success() {
            // The run ended before the signal reached it: still checked below.
            t.finished_first += 1;
        } else {
            t.injected += 1;
            t.by_signal[which] += 1;
            if sig != Signal::SIGKILL {
                t.max_stop = t.max_stop.max(stop);
                assert!(
                    stop <= STOP_WITHIN,
                    "run {i}: {sig} at {at:?} took {stop:?} to stop (limit {STOP_WITHIN:?})"
                );
                assert_eq!(status.code(), Some(130), "run {i}: {sig} exits 130");
            }
        }
        // Children die with isobench (PDEATHSIG); give the kernel a moment to reap them.
        let deadline = Instant::now() + Duration::from_secs(5);
        while kids.iter().any(|&(p, s)| alive(p, s)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let orphans: Vec<i32> = kids
            .iter()
            .filter(|&&(p, s)| alive(p, s))
            .map(|&(p, _)| p)
            .collect();
        assert!(
            orphans.is_empty(),
            "run {i}: child processes outlived isobench: {orphans:?}"
        );
        let mut left = host_leftovers(pid);
        left.extend(
            scratch_entries(out.path())
                .iter()
                .map(|p| format!("scratch: {}", p.display())),
        );
        if !left.is_empty() {
            assert_eq!(
                sig,
                Signal::SIGKILL,
                "run {i}: {sig} at {at:?} left {left:?}"
            );
            t.leftovers_after_signal += left.len() as u32;
        }
        if sig == Signal::SIGKILL {
            let cleaned = isobench()
                .args(["clean", "--out"])
                .arg(out.path())
                .output()
                .unwrap();
            assert!(
                cleaned.status.success(),
                "run {i}: clean failed: {}",
                String::from_utf8_lossy(&cleaned.stderr)
            );
            if !left.is_empty() {
                t.removed_by_clean += left.len() as u32;
            }
        }
        let mut after = host_leftovers(pid);
        after.extend(
            scratch_entries(out.path())
                .iter()
                .map(|p| format!("scratch: {}", p.display())),
        );
        t.leftovers_at_end += after.len() as u32;
        assert!(
            after.is_empty(),
            "run {i}: left behind at the end: {after:?}"
        );
        // Whatever was stored parses, and a run is marked complete only when every
        // environment and workload has its last round on disk (a signal may land after the
        // measurement ended, while the report is rendered).
        if let Some(dir) = run_dir(out.path()) {
            let samples = dir.join(SAMPLES_CSV).exists().then(|| {
                t.files_checked += 1;
                read_samples(&dir.join(SAMPLES_CSV))
                    .unwrap_or_else(|e| panic!("run {i}: samples.csv does not parse: {e}"))
            });
            if dir.join(RUN_JSON).exists() {
                let run = read_run(&dir.join(RUN_JSON))
                    .unwrap_or_else(|e| panic!("run {i}: run.json does not parse: {e}"));
                if run.outcome.name() == "complete" {
                    let rows = samples.unwrap_or_default();
                    let pairs = |last: bool| -> std::collections::BTreeSet<(String, String)> {
                        rows.iter()
                            .filter(|r| !last || r.round + 1 == run.config.rounds)
                            .map(|r| (r.env.clone(), r.workload.clone()))
                            .collect()
                    };
                    assert!(
                        !rows.is_empty() && pairs(true) == pairs(false),
                        "run {i}: marked complete without its last round"
                    );
                }
                t.files_checked += 1;
            }
        }
        println!(
            "faults: run {i}: {sig} at {:.0} ms, {}, stopped in {:.0} ms, {} leftover(s) before clean",
            at.as_secs_f64() * 1e3,
            if delivered && !status.success() {
                "interrupted"
            } else {
                "had already finished"
            },
            stop.as_secs_f64() * 1e3,
            left.len()
        );
    }
    println!(
        "faults summary: runs={n} faults_injected={} (SIGINT {}, SIGTERM {}, SIGKILL {}) finished_before_fault={} leftovers_after_fault={} removed_by_clean={} leftovers_at_end={} files_parsed={} max_stop_ms={:.0}",
        t.injected,
        t.by_signal[0],
        t.by_signal[1],
        t.by_signal[2],
        t.finished_first,
        t.leftovers_after_signal,
        t.removed_by_clean,
        t.leftovers_at_end,
        t.files_checked,
        t.max_stop.as_secs_f64() * 1e3
    );
    assert!(
        t.injected * 2 >= n as u32,
        "fewer than half of the runs were hit while running ({} of {n})",
        t.injected
    );
}
