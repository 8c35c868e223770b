//! Two runs at once on one machine (docs/RELIABILITY.md): native, container and vm each,
//! into the same results and scratch directories. They must not share run ids, scratch
//! directories, cgroups or mounts, neither may remove what the other made, and both must
//! produce valid, complete results.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use isobench::results::{read_run, read_samples, RUN_JSON, SAMPLES_CSV};

fn start(out: &Path, seed: u64) -> std::process::Child {
    Command::cargo_bin("isobench")
        .unwrap()
        .args([
            "run",
            "--env",
            "native,container,vm",
            "--strict",
            "--workload",
            "cpu.int,io.rand,sys.call",
            "--rounds",
            "3",
            "--warmup",
            "0",
            "--cpu",
            "none",
        ])
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Names of mounts, cgroups and scratch entries that belong to isobench process `pid`.
fn objects_of(pid: u32, scratch: &Path) -> BTreeSet<String> {
    let me = format!("isobench-{pid}-");
    let mut found = BTreeSet::new();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if let Some(i) = l.find(&me) {
            let name: String = l[i..]
                .chars()
                .take_while(|c| *c != '/' && *c != ' ')
                .collect();
            found.insert(format!("mount {name}"));
        }
    }
    fn walk(dir: &Path, depth: u32, me: &str, found: &mut BTreeSet<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(me) {
                    found.insert(format!("cgroup {n}"));
                }
                if depth > 0 {
                    walk(&p, depth - 1, me, found);
                }
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), 6, &me, &mut found);
    if let Ok(rd) = std::fs::read_dir(scratch) {
        for run in rd.flatten() {
            let owner = std::fs::read_to_string(run.path().join(isobench::scratch::OWNER_FILE))
                .unwrap_or_default();
            if owner.split_whitespace().next() == Some(&pid.to_string()) {
                found.insert(format!("scratch {}", run.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn two_runs_at_once_share_nothing_and_both_are_valid() {
    let out = tempfile::tempdir().unwrap();
    let scratch = out.path().join(".scratch");
    let mut a = start(out.path(), 1);
    let mut b = start(out.path(), 2);
    let (pa, pb) = (a.id(), b.id());
    let mut seen_a = BTreeSet::new();
    let mut seen_b = BTreeSet::new();
    let mut overlap = 0u32;
    let t0 = Instant::now();
    let (sa, sb) = loop {
        let (oa, ob) = (objects_of(pa, &scratch), objects_of(pb, &scratch));
        if !oa.is_empty() && !ob.is_empty() {
            overlap += 1;
        }
        // The same object never belongs to both.
        assert!(ob.iter().all(|s| !oa.contains(s)), "shared: {oa:?} {ob:?}");
        seen_a.extend(oa);
        seen_b.extend(ob);
        match (a.try_wait().unwrap(), b.try_wait().unwrap()) {
            (Some(x), Some(y)) => break (x, y),
            _ if t0.elapsed() > Duration::from_secs(300) => {
                let _ = a.kill();
                let _ = b.kill();
                let _ = a.wait();
                let _ = b.wait();
                panic!("two tiny runs did not end within 300 s");
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let err = |c: &mut std::process::Child| {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut s);
        s
    };
    assert!(sa.success(), "run A failed: {}", err(&mut a));
    assert!(sb.success(), "run B failed: {}", err(&mut b));
    println!(
        "concurrency: run A made {:?}, run B made {:?}; both had objects on the host at once in {overlap} polls",
        seen_a, seen_b
    );
    assert!(overlap > 0, "the two runs never overlapped in time");
    assert!(
        seen_a.iter().any(|s| s.starts_with("cgroup"))
            && seen_b.iter().any(|s| s.starts_with("cgroup"))
    );
    // Two run directories, each complete and parseable, with different run ids.
    let dirs: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p.is_symlink()
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let ids: BTreeSet<String> = dirs
        .iter()
        .map(|d| {
            let run = read_run(&d.join(RUN_JSON)).unwrap();
            assert_eq!(run.outcome.name(), "complete", "{}", d.display());
            assert!(!read_samples(&d.join(SAMPLES_CSV)).unwrap().is_empty());
            run.run_id
        })
        .collect();
    assert_eq!(ids.len(), 2, "the two runs share a run id: {ids:?}");
    // Nothing of either is left.
    assert!(objects_of(pa, &scratch).is_empty() && objects_of(pb, &scratch).is_empty());
}
