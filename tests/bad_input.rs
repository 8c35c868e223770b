//! Bad input of every kind (docs/RELIABILITY.md): each flag refused with a message naming the
//! flag and what it accepts, results files that are truncated, from another schema version or
//! hand-edited refused with the file and the field named, and `--out` that can never corrupt
//! or overwrite existing results. Each test prints a `bad input:` line with its count.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::prelude::*;
use common::{catalogue, store_run, synthetic_run, synthetic_samples};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

mod support;
use support::isobench;

/// Run isobench, expecting it to refuse with exit code `code`; its stderr.
fn refused(args: &[&str], code: i32) -> String {
    let out = isobench().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "isobench {args:?} should exit {code}: {stderr}"
    );
    stderr
}

#[test]
fn every_bad_flag_is_refused_naming_the_flag_and_what_it_accepts() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    // (flags, what the message must hold: the flag, and the accepted values or form)
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--env", "qemu"],
            &["qemu", "native, container, runc, crun, runsc, vm, oci:PATH"],
        ),
        (
            &["--env", ""],
            &[
                "--env",
                "native, container, runc, crun, runsc, vm, oci:PATH",
            ],
        ),
        (
            &["--env", ","],
            &[
                "--env",
                "native, container, runc, crun, runsc, vm, oci:PATH",
            ],
        ),
        (&["--workload", "nope.*"], &["nope.*", "known workloads"]),
        (&["--workload", ""], &["--workload", "names or globs"]),
        (&["--workload", "[a-"], &["[a-", "pattern"]),
        (&["--rounds", "0"], &["--rounds", "at least 1"]),
        (&["--rounds", "x"], &["--rounds"]),
        (&["--warmup", "x"], &["--warmup"]),
        (&["--budget", "5q"], &["--budget", "90s, 3m"]),
        (
            &["--budget", "1m", "--rounds", "3"],
            &["--budget", "--rounds"],
        ),
        (
            &["--precision", "0"],
            &["--precision", "above 0 and below 100"],
        ),
        (
            &["--precision", "100"],
            &["--precision", "above 0 and below 100"],
        ),
        (&["--margin", "0"], &["--margin", "above 0 and below 100"]),
        (&["--margin", "x"], &["--margin"]),
        (
            &["--deadline", "0"],
            &["--deadline", "positive number of seconds"],
        ),
        (&["--deadline", "x"], &["--deadline"]),
        (&["--cpu", "x"], &["--cpu", "auto or none"]),
        (
            &["--cpu", "99"],
            &["--cpu 99", "may only use CPU(s)", "--cpu none"],
        ),
        (&["--seed", "x"], &["--seed"]),
        (&["--quick", "--full"], &["--quick", "--full"]),
        (&["--cpus", "0"], &["--cpus", "positive number"]),
        (&["--cpus=-1"], &["--cpus", "positive number"]),
        (&["--memory", "lots"], &["--memory", "512M"]),
        (&["--cpuset", "a-b"], &["--cpuset", "0-1,3"]),
        (&["--io-weight", "0"], &["--io-weight", "1..=10000"]),
        (&["--upper", "ssd"], &["--upper", "disk, tmpfs"]),
        (&["--seccomp", "strict"], &["--seccomp", "default, off"]),
        (&["--caps", "some"], &["--caps", "default, all"]),
        (&["--guest-page", "1g"], &["--guest-page", "4k, 2m"]),
        (&["--thp", "maybe"], &["--thp", "on, off"]),
        (
            &["--inject-slowdown", "x"],
            &["--inject-slowdown", "ENV=PERCENT"],
        ),
        (&["--no-such-flag"], &["--no-such-flag"]),
    ];
    for (flags, needles) in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--out", o]);
        let stderr = refused(&args, 2);
        for n in *needles {
            assert!(
                stderr.contains(n),
                "isobench {args:?}: {n:?} not in {stderr}"
            );
        }
    }
    let other: &[(&[&str], &[&str])] = &[
        (
            &["report", "/nonexistent/run"],
            &["/nonexistent/run", "run directory"],
        ),
        (&["compare", "/nonexistent/a"], &["BASELINE and CURRENT"]),
        (
            &["compare", "/nonexistent/a", "/nonexistent/b"],
            &["/nonexistent/"],
        ),
        (&["report", o], &["no run.json"]),
        (&["clean", "--frobnicate"], &["--frobnicate"]),
        (&["frobnicate"], &["frobnicate"]),
    ];
    for (args, needles) in other {
        let stderr = refused(args, 2);
        for n in *needles {
            assert!(
                stderr.contains(n),
                "isobench {args:?}: {n:?} not in {stderr}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "a refused command writes nothing"
    );
    println!(
        "bad input: {} bad flags and commands refused, each naming the flag or file",
        cases.len() + other.len()
    );
}

/// A valid stored run in `dir`.
fn valid_run(dir: &Path) {
    let envs = ["native", "native-b", "container"];
    let specs = catalogue();
    store_run(
        dir,
        &synthetic_run(&envs, 6, 1),
        &synthetic_samples(&specs, &envs, 6, 1),
    );
}

/// Edit `run.json`'s JSON value at `pointer`.
fn edit_json(dir: &Path, pointer: &str, value: serde_json::Value) {
    let path = dir.join("run.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("run.json has no {pointer}")) = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn damaged_results_are_refused_naming_the_file_and_the_field() {
    let top = tempfile::tempdir().unwrap();
    let good = top.path().join("good");
    valid_run(&good);
    isobench().arg("report").arg(&good).assert().success();
    type Damage = fn(&Path);
    let cases: &[(&str, Damage, &[&str])] = &[
        (
            "samples.csv cut in the middle of a row",
            |d| {
                let p = d.join("samples.csv");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            },
            &["samples.csv", "line", "truncated"],
        ),
        (
            "samples.csv with a word where a number belongs",
            |d| {
                let p = d.join("samples.csv");
                let t = std::fs::read_to_string(&p).unwrap();
                let mut lines: Vec<String> = t.lines().map(String::from).collect();
                let mut cells: Vec<String> = lines[3].split(',').map(String::from).collect();
                cells[0] = "banana".into();
                lines[3] = cells.join(",");
                std::fs::write(&p, lines.join("\n")).unwrap();
            },
            &["samples.csv", "line 4", "field `round`"],
        ),
        (
            "run.json of another schema version",
            |d| edit_json(d, "/schema_version", 999.into()),
            &["run.json", "schema", "999"],
        ),
        (
            "run.json with a word where the seed belongs",
            |d| edit_json(d, "/config/seed", "banana".into()),
            &["run.json", "config.seed"],
        ),
        (
            "run.json with an unknown outcome",
            |d| edit_json(d, "/outcome", "splendid".into()),
            &["run.json", "outcome", "splendid"],
        ),
        (
            "run.json cut in half",
            |d| {
                let p = d.join("run.json");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            },
            &["run.json"],
        ),
        (
            "run.json that is not JSON at all",
            |d| std::fs::write(d.join("run.json"), "hello\n").unwrap(),
            &["run.json"],
        ),
        (
            "samples.csv missing",
            |d| std::fs::remove_file(d.join("samples.csv")).unwrap(),
            &["samples.csv"],
        ),
    ];
    for (i, (what, damage, needles)) in cases.iter().enumerate() {
        let dir = top.path().join(format!("bad{i}"));
        valid_run(&dir);
        damage(&dir);
        let before = snapshot(&dir);
        let stderr = refused(&["report", dir.to_str().unwrap()], 2);
        for n in *needles {
            assert!(stderr.contains(n), "{what}: {n:?} not in {stderr}");
        }
        let stderr = refused(
            &["compare", dir.to_str().unwrap(), good.to_str().unwrap()],
            2,
        );
        assert!(
            needles.iter().take(1).all(|n| stderr.contains(n)),
            "{what} (compare): {stderr}"
        );
        assert_eq!(snapshot(&dir), before, "{what}: a refused file was changed");
    }
    println!(
        "bad input: {} damaged results files refused by report and by compare, naming file and field",
        cases.len()
    );
}

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_symlink() {
                m.insert(
                    p.clone(),
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else if p.is_dir() {
                stack.push(p);
            } else {
                m.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

/// A tiny real run into `out`; its output.
fn tiny_run(out: &Path) -> std::process::Output {
    isobench()
        .args([
            "run",
            "--env",
            "native",
            "--workload",
            "sys.call",
            "--rounds",
            "1",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn out_never_corrupts_or_overwrites_existing_results() {
    let top = tempfile::tempdir().unwrap();
    // --out names a file: refused, the file untouched.
    let file = top.path().join("a-file");
    std::fs::write(&file, b"precious\n").unwrap();
    let o = tiny_run(&file);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "--out into a file ran: {stderr}");
    assert!(stderr.contains("a-file"), "the path is named: {stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious\n");

    // --out on a read-only filesystem: refused naming the directory.
    let ro = top.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    mount(
        Some("isobench-test-ro"),
        &ro,
        Some("tmpfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m"),
    )
    .unwrap_or_else(|e| panic!("mounting a read-only tmpfs (needs root): {e}"));
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = umount2(self.0, MntFlags::MNT_DETACH);
        }
    }
    let _ro_guard = Unmount(&ro);
    let o = tiny_run(&ro.join("results"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "--out on a read-only filesystem ran: {stderr}"
    );
    assert!(
        stderr.contains(ro.to_str().unwrap()) && stderr.contains("Read-only"),
        "the directory and the cause are named: {stderr}"
    );

    // --out holding older runs, including ones named for this very second and the next
    // ones: a new run gets a directory of its own, and every older file stays as it was.
    let out = top.path().join("results");
    let now = chrono::Utc::now();
    for s in 0..5 {
        let stamp = (now + chrono::Duration::seconds(s))
            .format("%Y%m%dT%H%M%SZ")
            .to_string();
        valid_run(&out.join(stamp));
    }
    let before = snapshot(&out);
    let o = tiny_run(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = snapshot(&out);
    for (p, bytes) in &before {
        assert_eq!(after.get(p), Some(bytes), "{} was changed", p.display());
    }
    let new: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(
        new.iter().any(|p| p.ends_with("run.json")),
        "the new run wrote its own run.json: {new:?}"
    );
    println!("bad input: 3 unsafe --out targets (a file, a read-only filesystem, a directory of older runs) left existing files intact");
}
