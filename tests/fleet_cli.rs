//! `isobench merge` and `isobench pack` as a user runs them, on synthetic runs: tarballs
//! and directories merge into a fleet report, the fleet directory is a baseline `compare`
//! and `baseline save` accept, and bad input (mixed images, a used output directory, a
//! bad label) is refused with a message that names the fix.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn isobench() -> Command {
    let mut c = Command::cargo_bin("isobench").unwrap();
    c.timeout(std::time::Duration::from_secs(120));
    c
}

/// A synthetic run of host `name` stored under `dir/name`.
fn host(dir: &Path, name: &str, seed: u64, image: Option<&str>) -> PathBuf {
    let envs = ["native", "native-b", "container"];
    let mut run = common::synthetic_run(&envs, 12, seed);
    run.run_id = format!("run-{name}");
    run.host.hostname = name.into();
    run.labels.insert("pool".into(), name.into());
    if let Some(sha) = image {
        run.image.sha256 = sha.into();
    }
    let specs: Vec<_> = common::catalogue()
        .into_iter()
        .filter(|s| s.workload == "cpu.int" || s.workload == "sys.call")
        .collect();
    let samples = common::synthetic_samples(&specs, &envs, 12, seed);
    let d = dir.join(name);
    common::store_run(&d, &run, &samples);
    d
}

#[test]
fn packed_runs_merge_into_a_fleet_that_compare_accepts() {
    let t = tempfile::tempdir().unwrap();
    let a = host(t.path(), "a", 1, None);
    let b = host(t.path(), "b", 2, None);
    let c = host(t.path(), "c", 3, None);
    let inputs = t.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    // pack to stdout and to a file.
    let out = isobench().arg("pack").arg(&a).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout[..2], [0x1f, 0x8b], "a gzip stream on stdout");
    std::fs::write(inputs.join("a.tar.gz"), &out.stdout).unwrap();
    isobench()
        .arg("pack")
        .arg(&b)
        .arg("-o")
        .arg(inputs.join("b.tar.gz"))
        .assert()
        .success();

    let fleet = t.path().join("fleet");
    isobench()
        .arg("merge")
        .arg(&inputs)
        .arg(&c)
        .arg("--out")
        .arg(&fleet)
        .assert()
        .success()
        .stdout(predicate::str::contains("3 host(s), margin ±1%"))
        .stdout(predicate::str::contains("cpu.int/hash"))
        .stdout(predicate::str::contains("wrote"));
    for f in [
        "fleet.md",
        "fleet.html",
        "fleet.csv",
        "fleet.json",
        "run.json",
        "samples.csv",
    ] {
        assert!(fleet.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(fleet.join("fleet.md")).unwrap();
    for host in [
        "a pool=a",
        "b pool=b",
        "c pool=c",
        "Synthetic CPU",
        "kvm_pvm",
        "hybrid",
    ] {
        assert!(md.contains(host), "{host} in\n{md}");
    }
    assert!(md.contains("plots/forest-cpu.int-hash.png"), "{md}");

    // The fleet is a baseline.
    isobench()
        .arg("compare")
        .arg(&fleet)
        .arg(&c)
        .assert()
        .success()
        .stdout(predicate::str::contains("fleet of 3 hosts"));
    let results = t.path().join("results");
    isobench()
        .args(["baseline", "save", "fleet"])
        .arg(&fleet)
        .arg("--out")
        .arg(&results)
        .assert()
        .success();
    isobench()
        .args(["compare", "--baseline", "fleet", "--out"])
        .arg(&results)
        .arg(&a)
        .assert()
        .success();

    // A merge never writes into a used directory.
    isobench()
        .arg("merge")
        .arg(&c)
        .arg("--out")
        .arg(&fleet)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not empty: give a new directory",
        ));
}

#[test]
fn mixed_images_are_refused_with_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let a = host(t.path(), "a", 1, None);
    let b = host(t.path(), "b", 2, Some(&"cd".repeat(32)));
    let out = t.path().join("fleet");
    isobench()
        .arg("merge")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("image differs"))
        .stderr(predicate::str::contains("--allow-mixed"));
    assert!(!out.exists(), "a refused merge leaves nothing behind");
    isobench()
        .arg("merge")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .arg("--allow-mixed")
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: image differs"));
    let md = std::fs::read_to_string(out.join("fleet.md")).unwrap();
    assert!(md.contains("Differences between the runs"), "{md}");
}

#[test]
fn bad_inputs_are_named() {
    let t = tempfile::tempdir().unwrap();
    isobench()
        .arg("merge")
        .arg(t.path().join("missing"))
        .arg("--out")
        .arg(t.path().join("f"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    isobench()
        .arg("pack")
        .arg(t.path())
        .arg("-o")
        .arg(t.path().join("x.tar.gz"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no run.json"));
    assert!(!t.path().join("x.tar.gz").exists());
    isobench()
        .args(["run", "--label", "novalue"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not KEY=VALUE"));
    isobench()
        .args(["merge", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("I²"))
        .stdout(predicate::str::contains("--allow-mixed"));
}

#[test]
fn run_out_dash_writes_a_tarball_that_merges() {
    let t = tempfile::tempdir().unwrap();
    let out = isobench()
        .current_dir(t.path())
        .args([
            "run",
            "--env",
            "native",
            "--workload",
            "cpu.int",
            "--rounds",
            "5",
            "--warmup",
            "1",
            "--label",
            "pool=stdout",
            "--out",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout[..2], [0x1f, 0x8b], "a gzip stream on stdout");
    let leftovers: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().collect();
    assert!(
        leftovers.is_empty(),
        "the staging directory is removed: {leftovers:?}"
    );
    let tarball = t.path().join("run.tar.gz");
    std::fs::write(&tarball, &out.stdout).unwrap();
    let fleet = t.path().join("fleet");
    isobench()
        .arg("merge")
        .arg(&tarball)
        .arg("--out")
        .arg(&fleet)
        .assert()
        .success()
        .stdout(predicate::str::contains("1 host(s)"));
    let json = std::fs::read_to_string(fleet.join("fleet.json")).unwrap();
    assert!(json.contains("\"pool\": \"stdout\""), "{json}");
}
