//! ISA tiers for real: every tier this host offers runs `cpu.fp` and `mem.stream` in native,
//! container and vm with the checksums of the plain-Rust references (the same reference for
//! every tier), and the image reports the tier it ran; a tier the environment does not offer
//! is refused with a clear error, in the image (CPUID checked inside the guest) and in the
//! run's choice of tier. Needs root, namespaces, overlayfs and /dev/kvm (CI has them);
//! without them the tests fail with the reason.

use std::time::Duration;

use isobench::env::container::Container;
use isobench::env::native::Native;
use isobench::env::vm::{Vm, VmOptions};
use isobench::env::{EnvError, Environment, InstanceSpec};
use isobench::plan::ContainerOptions;
use isobench::workload::isa::Isa;
use isobench::workload::{by_name, Prepared, Profile, Sizing, Span};
use isobench_abi::{FLAG_STREAM_NT_COPY, RESULT_ISA, STATUS_ISA_UNAVAILABLE};

const QUICK_SHORT: Sizing = Sizing {
    profile: Profile::Quick,
    span: Span::Short,
};

fn spec(dir: &tempfile::TempDir, work: u64) -> InstanceSpec {
    InstanceSpec {
        work_size: work.next_multiple_of(2 << 20),
        disk_size: 0,
        scratch: dir.path().to_path_buf(),
        deadline: Duration::from_secs(120),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

fn prepared(name: &str, tier: Isa) -> Prepared {
    let w = by_name(name).expect("in the catalogue");
    let mut p = (w.prepare)(QUICK_SHORT, 0x15a);
    tier.apply(&mut p.invocation);
    p
}

fn tsc_hz() -> f64 {
    isobench::tsc::calibrate(Duration::from_millis(10))
}

/// Run both tiered workloads in every tier `env` offers, checking checksums and the tier.
fn every_offered_tier_matches_the_references(mut env: Box<dyn Environment>) {
    let offered = env.isa_tiers().expect("read the tiers");
    eprintln!(
        "{} offers {}",
        env.label(),
        isobench::workload::isa::list(&offered)
    );
    assert_eq!(offered[0], Isa::Sse2, "every environment runs SSE2");
    let dir = tempfile::tempdir().expect("tempdir");
    let work = ["cpu.fp", "mem.stream"]
        .iter()
        .map(|n| prepared(n, Isa::Sse2).work_bytes)
        .max()
        .unwrap_or(0);
    env.start(&spec(&dir, work))
        .unwrap_or_else(|e| panic!("starting {}: {e}", env.label()));
    let hz = tsc_hz();
    for &tier in &offered {
        // mem.stream twice: copy with cached and with non-temporal stores.
        for (name, nt) in [
            ("cpu.fp", false),
            ("mem.stream", false),
            ("mem.stream", true),
        ] {
            let mut p = prepared(name, tier);
            p.invocation.flags &= !FLAG_STREAM_NT_COPY;
            if nt {
                p.invocation.flags |= FLAG_STREAM_NT_COPY;
            }
            let raw = env
                .invoke(&p.invocation)
                .unwrap_or_else(|e| panic!("{} {name} {tier} nt {nt}: {e}", env.label()));
            assert_eq!(
                raw.results[RESULT_ISA],
                tier.code() + 1,
                "{} {name}: the image ran another tier than {tier}",
                env.label()
            );
            // The checksum against the reference, and the tier, checked by interpret.
            let w = by_name(name).expect("in the catalogue");
            let m = (w.interpret)(&p, &raw, hz)
                .unwrap_or_else(|e| panic!("{} {name} {tier}: {e}", env.label()));
            eprintln!(
                "  {} {name} {tier} nt {nt}: {} = {:.2} {}",
                env.label(),
                m[0].name,
                m[0].value,
                m[0].unit
            );
        }
    }
    // A tier above what a process on this host can run is refused by the image itself,
    // from CPUID (on a host without it: AVX-512 on an AVX2-only CPU). The vm is left out:
    // under kvm_pvm the guest's ring-3 CPUID returns the host's, not the VMM's (docs/KVM.md,
    // "ISA tiers in the guest"), so the refusal there is the harness's, tested below.
    if env.label() != "vm" {
        if let Some(&above) = Isa::ALL.iter().find(|t| !offered.contains(t)) {
            let p = prepared("cpu.fp", above);
            match env.invoke(&p.invocation) {
                Err(EnvError::Status {
                    status, meaning, ..
                }) => {
                    assert_eq!(status, STATUS_ISA_UNAVAILABLE);
                    assert!(meaning.contains("--isa"), "{meaning}");
                }
                other => panic!("{}: {above} should be refused, got {other:?}", env.label()),
            }
        }
    }
    env.stop().expect("stop");
}

#[test]
fn native_runs_every_host_tier_with_the_reference_checksums() {
    let env = Box::new(Native::new("native"));
    assert_eq!(
        Native::new("native").isa_tiers().expect("tiers"),
        Isa::host_tiers()
    );
    every_offered_tier_matches_the_references(env);
}

#[test]
fn container_runs_every_host_tier_with_the_reference_checksums() {
    if let Err(reason) = Container::probe() {
        panic!("the container test needs namespaces, overlayfs and root: {reason}");
    }
    every_offered_tier_matches_the_references(Box::new(Container::new(
        "container",
        ContainerOptions::default(),
    )));
}

#[test]
fn vm_runs_every_tier_its_kvm_offers_with_the_reference_checksums() {
    if let Err(reason) = Vm::probe() {
        panic!("the vm test needs KVM: {reason}");
    }
    let mut vm = Vm::new("vm", VmOptions::default());
    let offered = vm.isa_tiers().expect("tiers");
    let host = Isa::host_tiers();
    assert!(
        offered.iter().all(|t| host.contains(t)),
        "the guest offers {offered:?}, more than the host's {host:?}"
    );
    if offered != host {
        eprintln!(
            "note: this host's KVM offers the guest {} of the host's {}",
            isobench::workload::isa::list(&offered),
            isobench::workload::isa::list(&host)
        );
    }
    every_offered_tier_matches_the_references(Box::new(vm));
}

/// With `--vm-host-isa` the vm offers the host's tiers, and each runs in the guest with the
/// reference checksums (under kvm_pvm the guest's ring-3 code runs on the host CPU; on a
/// hardware KVM that does not give a tier the image refuses it and this test fails with
/// that status).
#[test]
fn vm_with_the_hosts_tiers_runs_each_with_the_reference_checksums() {
    if let Err(reason) = Vm::probe() {
        panic!("the vm test needs KVM: {reason}");
    }
    let mut vm = Vm::new(
        "vm",
        VmOptions {
            vm_host_isa: true,
            ..VmOptions::default()
        },
    );
    assert_eq!(vm.isa_tiers().expect("tiers"), Isa::host_tiers());
    every_offered_tier_matches_the_references(Box::new(vm));
}

/// A vm whose KVM offers only SSE2 (this VMM's CPUID and XCR0 hide the rest, as a KVM
/// without them does): a run with native and vm falls back to SSE2 with a note, and
/// `--isa avx2` is refused, naming the vm and what it offers.
#[test]
fn a_run_falls_back_from_or_refuses_a_tier_the_vms_kvm_does_not_offer() {
    if let Err(reason) = Vm::probe() {
        panic!("the vm test needs KVM: {reason}");
    }
    let bin = env!("CARGO_BIN_EXE_isobench");
    let out = tempfile::tempdir().expect("tempdir");
    let run = |isa: &str| {
        std::process::Command::new("timeout")
            .args([
                "300",
                bin,
                "run",
                "--env",
                "native,vm",
                "--workload",
                "cpu.fp",
            ])
            .args([
                "--rounds", "1", "--warmup", "0", "--cpu", "none", "--isa", isa,
            ])
            .args(["--vm-max-isa", "sse2", "--out"])
            .arg(out.path())
            .output()
            .expect("run isobench")
    };
    let refused = run("avx2");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "--isa avx2 should fail: {err}");
    assert!(
        err.contains("--isa avx2: the vm environment cannot run it here (it offers sse2)"),
        "{err}"
    );
    let fell_back = run("best");
    let err = String::from_utf8_lossy(&fell_back.stderr);
    assert!(fell_back.status.success(), "{err}");
    assert!(err.contains("ISA tier sse2"), "{err}");
    let host = Isa::host_tiers();
    if host.len() > 1 {
        assert!(
            err.contains("note: native offers") && err.contains("every environment runs sse2"),
            "{err}"
        );
    }
    let run_json = std::fs::read_to_string(out.path().join("latest/run.json")).expect("run.json");
    let v: serde_json::Value = serde_json::from_str(&run_json).expect("json");
    assert_eq!(v["config"]["options"]["isa"], "sse2");
    for e in v["environments"].as_array().expect("environments") {
        assert_eq!(e["facts"]["isa"], "sse2", "{e}");
    }
    let vm = v["environments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["label"] == "vm"))
        .expect("the vm's record");
    assert_eq!(vm["facts"]["isa_offered"], "sse2");
}

/// `isobench info` lists the tiers each environment offers; a bad `--isa` says what to type.
#[test]
fn info_lists_tiers_per_environment_and_a_bad_isa_is_explained() {
    let bin = env!("CARGO_BIN_EXE_isobench");
    let out = std::process::Command::new("timeout")
        .args(["60", bin, "info"])
        .output()
        .expect("run isobench info");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let host = isobench::workload::isa::list(&Isa::host_tiers());
    let native = text
        .lines()
        .find(|l| l.trim_start().starts_with("native"))
        .unwrap_or_else(|| panic!("no native line in:\n{text}"));
    assert!(native.ends_with(&format!("ISA tiers: {host}")), "{native}");
    let vm = text
        .lines()
        .find(|l| l.trim_start().starts_with("vm "))
        .unwrap_or_else(|| panic!("no vm line in:\n{text}"));
    assert!(vm.contains("ISA tiers: sse2"), "{vm}");
    let bad = std::process::Command::new("timeout")
        .args(["60", bin, "run", "--isa", "avx"])
        .output()
        .expect("run isobench");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("use sse2, avx2, avx512 or best"), "{err}");
}
