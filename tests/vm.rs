//! The vm environment on real KVM: every catalogue workload gives native's checksum in the
//! guest, hostcalls are served and validated, faults, runaways and bad requests end in clear
//! errors, and nothing is left behind. Needs read-write /dev/kvm (CI runs as root); without
//! it every test fails with the probe's reason.

use std::time::{Duration, Instant};

use isobench::env::vm::{self, GuestPageSize, Thp, Vm, VmOptions};
use isobench::env::{EnvError, Environment, InstanceSpec, Invocation};
use isobench::workload::{catalogue, Profile, Sizing, Span};
use isobench_abi::*;

const QUICK_SHORT: Sizing = Sizing {
    profile: Profile::Quick,
    span: Span::Short,
};

fn require_kvm() {
    if let Err(reason) = Vm::probe() {
        panic!("the vm tests need KVM: {reason}");
    }
}

fn spec(
    dir: &tempfile::TempDir,
    work_size: u64,
    disk_size: u64,
    deadline: Duration,
) -> InstanceSpec {
    InstanceSpec {
        work_size,
        disk_size,
        scratch: dir.path().to_path_buf(),
        deadline,
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

fn started(opts: VmOptions, spec: &InstanceSpec) -> Vm {
    require_kvm();
    let mut vm = Vm::new("vm", opts);
    vm.start(spec).expect("start the vm");
    vm
}

fn inv(workload: u32, params: &[u64]) -> Invocation {
    Invocation {
        name: "test",
        workload,
        params: isobench::workload::params(params),
        flags: 0,
    }
}

fn hostcall(vm: &mut Vm, op: u16, args: [u64; 4]) -> i64 {
    let p = [op as u64, args[0], args[1], args[2], args[3]];
    let run = vm
        .invoke(&inv(WL_TEST_HOSTCALL, &p))
        .expect("hostcall invocation");
    assert_eq!(run.hostcalls, 1);
    run.results[0] as i64
}

fn tsc_hz() -> f64 {
    vm::tsc_khz().expect("KVM_GET_TSC_KHZ") as f64 * 1e3
}

#[test]
fn every_catalogue_workload_matches_its_reference_in_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let prepared: Vec<_> = catalogue()
        .iter()
        .map(|w| (w, (w.prepare)(QUICK_SHORT, 42)))
        .collect();
    let work = prepared
        .iter()
        .map(|(_, p)| p.work_bytes)
        .max()
        .unwrap_or(0);
    let disk = prepared
        .iter()
        .map(|(_, p)| p.disk_bytes)
        .max()
        .unwrap_or(0);
    let mut vm = started(
        VmOptions::default(),
        &spec(&dir, work, disk, Duration::from_secs(300)),
    );
    assert!(!prepared.is_empty());
    for (w, p) in &prepared {
        let raw = vm
            .invoke(&p.invocation)
            .unwrap_or_else(|e| panic!("{}: {e}", w.name));
        let metrics = (w.interpret)(p, &raw, tsc_hz()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!metrics.is_empty(), "{}", w.name);
        eprintln!(
            "{}: {:.1} ms timed, {:.1} ms wall, {} records",
            w.name,
            raw.cycles as f64 / tsc_hz() * 1e3,
            raw.wall_ns as f64 / 1e6,
            raw.records.len()
        );
        assert!(
            raw.counters["vm_exits.io"] >= 1,
            "{}: {:?}",
            w.name,
            raw.counters
        );
        assert_eq!(raw.counters["vm_exits.mmio"], 0);
        assert!(raw.wall_ns > 0);
    }
    vm.stop().unwrap();
}

#[test]
fn cpu_int_in_both_page_sizes_and_thp_settings() {
    let w = isobench::workload::by_name("cpu.int").unwrap();
    let p = (w.prepare)(QUICK_SHORT, 7);
    for guest_page in [GuestPageSize::Size4K, GuestPageSize::Size2M] {
        for thp in [Thp::On, Thp::Off] {
            let dir = tempfile::tempdir().unwrap();
            let opts = VmOptions {
                guest_page,
                thp,
                vm_max_isa: None,
                vm_host_isa: false,
            };
            let mut vm = started(opts, &spec(&dir, 8 << 20, 0, Duration::from_secs(60)));
            let facts = vm.facts();
            assert_eq!(facts["guest_page"], guest_page.name());
            assert_eq!(facts["thp"], thp.name());
            for _ in 0..2 {
                let raw = vm.invoke(&p.invocation).unwrap();
                (w.interpret)(&p, &raw, tsc_hz()).unwrap();
                // One exit: HC_DONE. Nothing else leaves the timed loop.
                assert_eq!(raw.counters["vm_exits.io"], 1, "{opts:?}");
                assert_eq!(raw.counters["vm_exits.total"], 1, "{opts:?}");
            }
        }
    }
}

#[test]
fn start_workload_reads_a_tsc_after_launch() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&dir, 0, 0, Duration::from_secs(30));
    require_kvm();
    let mut vm = Vm::new("vm", VmOptions::default());
    let hz = tsc_hz();
    for _ in 0..3 {
        let cycles = vm.measure_start(&s).unwrap();
        // Positive (the guest TSC tracks the host's) and below a second.
        assert!(cycles > 0 && (cycles as f64) < hz, "{cycles}");
    }
    // Also inside a persistent instance, where the image reads its first TSC.
    let mut vm = started(VmOptions::default(), &s);
    let t0 = isobench::tsc::now();
    let raw = vm.invoke(&inv(WL_START, &[])).unwrap();
    assert!(raw.results[0] > t0 && raw.results[0] - t0 < hz as u64);
}

#[test]
fn hostcalls_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = started(
        VmOptions::default(),
        &spec(&dir, 4 << 20, 1 << 20, Duration::from_secs(60)),
    );
    assert_eq!(hostcall(&mut vm, HC_NULL, [0; 4]), 0);
    // The disk file exists and has the requested size.
    let disk = dir.path().join("vm.disk");
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
    // Write the record buffer's first page to the disk, from the host's view too.
    assert_eq!(
        hostcall(&mut vm, HC_DISK_WRITE, [8192, RECORD_ADDR, 4096, 0]),
        4096
    );
    assert_eq!(hostcall(&mut vm, HC_DISK_FLUSH, [0; 4]), 0);
    assert_eq!(hostcall(&mut vm, HC_DISK_DROP_CACHE, [0; 4]), 0);
    let mut f = std::fs::read(&disk).unwrap();
    f[8192..8200].copy_from_slice(b"HOSTDATA");
    std::fs::write(&disk, &f).unwrap();
    // Host data read into working memory, then written back elsewhere: it went through the guest.
    assert_eq!(
        hostcall(&mut vm, HC_DISK_READ, [8192, WORK_BASE, 4096, 0]),
        4096
    );
    assert_eq!(hostcall(&mut vm, HC_DISK_WRITE, [0, WORK_BASE, 8, 0]), 8);
    assert_eq!(&std::fs::read(&disk).unwrap()[..8], b"HOSTDATA");
    // Discard the work memory: the data is gone (zero page), seen again through the disk.
    assert_eq!(hostcall(&mut vm, HC_DISCARD, [WORK_BASE, 4 << 20, 0, 0]), 0);
    assert_eq!(hostcall(&mut vm, HC_DISK_WRITE, [0, WORK_BASE, 8, 0]), 8);
    assert_eq!(&std::fs::read(&disk).unwrap()[..8], &[0u8; 8]);
    vm.stop().unwrap();
    assert!(!disk.exists(), "disk file left behind after stop");
}

#[test]
fn bad_hostcall_requests_get_negative_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let work = 4u64 << 20;
    let mut vm = started(
        VmOptions::default(),
        &spec(&dir, work, 1 << 20, Duration::from_secs(60)),
    );
    let cases: [(u16, [u64; 4], i64); 8] = [
        // Buffer outside guest memory, below the user region, past the work end, overflowing.
        (HC_DISK_READ, [0, 0x1000, 8, 0], -HC_ERR_ADDRESS),
        (
            HC_DISK_READ,
            [0, WORK_BASE + work - 8, 16, 0],
            -HC_ERR_ADDRESS,
        ),
        (HC_DISK_WRITE, [0, u64::MAX - 7, 16, 0], -HC_ERR_ADDRESS),
        (HC_DISK_READ, [0, PAGE_TABLE_BASE, 8, 0], -HC_ERR_ADDRESS),
        // Disk range beyond the disk.
        (
            HC_DISK_WRITE,
            [(1 << 20) - 8, WORK_BASE, 16, 0],
            -HC_ERR_OFFSET,
        ),
        (HC_DISK_READ, [u64::MAX, WORK_BASE, 16, 0], -HC_ERR_OFFSET),
        // Discard outside the working memory.
        (HC_DISCARD, [IMAGE_BASE, 4096, 0, 0], -HC_ERR_ADDRESS),
        // Unknown op.
        (HC_OP_COUNT + 3, [0; 4], -HC_ERR_OP),
    ];
    for (op, args, want) in cases {
        let run = vm
            .invoke(&inv(
                WL_TEST_HOSTCALL,
                &[op as u64, args[0], args[1], args[2], args[3]],
            ))
            .unwrap();
        assert_eq!(run.results[0] as i64, want, "op {op} args {args:x?}");
        assert_eq!(run.counters["vm_hostcalls.rejected"], 1);
    }
    // Still healthy after all of that.
    assert_eq!(hostcall(&mut vm, HC_NULL, [0; 4]), 0);
}

#[test]
fn a_guest_fault_is_a_crash_naming_the_exception_and_rip() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(&dir, 2 << 20, 1 << 20, Duration::from_secs(30));
    let mut vm = started(VmOptions::default(), &s);
    let t0 = Instant::now();
    let e = vm.invoke(&inv(WL_TEST_FAULT, &[])).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(10));
    let msg = e.to_string();
    match e {
        EnvError::Crashed { detail, .. } => {
            assert!(detail.contains("#PF page fault"), "{detail}");
            assert!(detail.contains("RIP 0x40"), "{detail}");
            assert!(detail.contains("write of 0x8"), "{detail}");
        }
        other => panic!("expected Crashed, got {other}"),
    }
    assert!(msg.contains("test"), "{msg}");
    // The instance is stopped (disk gone) and can be started again.
    assert!(!dir.path().join("vm.disk").exists());
    assert!(vm.invoke(&inv(WL_START, &[])).is_err());
    vm.start(&s).unwrap();
    vm.invoke(&inv(WL_START, &[])).unwrap();
    drop(vm);
    assert!(
        !dir.path().join("vm.disk").exists(),
        "disk file left behind after Drop"
    );
}

#[test]
fn a_runaway_guest_is_stopped_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let deadline = Duration::from_millis(500);
    let s = spec(&dir, 0, 0, deadline);
    let mut vm = started(VmOptions::default(), &s);
    let t0 = Instant::now();
    let e = vm.invoke(&inv(WL_TEST_SPIN, &[])).unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, EnvError::Deadline { .. }),
        "expected Deadline, got {e}"
    );
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(1),
        "{took:?}"
    );
    vm.start(&s).unwrap();
    vm.invoke(&inv(WL_START, &[])).unwrap();
}

#[test]
fn a_bad_status_names_the_workload_and_keeps_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = started(
        VmOptions::default(),
        &spec(&dir, 0, 0, Duration::from_secs(30)),
    );
    let e = vm.invoke(&inv(999, &[])).unwrap_err();
    assert!(
        matches!(
            e,
            EnvError::Status {
                status: STATUS_UNKNOWN_WORKLOAD,
                ..
            }
        ),
        "{e}"
    );
    // cpu.int with a buffer larger than the (empty) working memory: BAD_PARAMS.
    let e = vm.invoke(&inv(WL_CPU_INT, &[4096, 1, 1])).unwrap_err();
    assert!(
        matches!(
            e,
            EnvError::Status {
                status: STATUS_BAD_PARAMS,
                ..
            }
        ),
        "{e}"
    );
    vm.invoke(&inv(WL_START, &[])).unwrap();
}

#[test]
fn facts_and_host_detection() {
    require_kvm();
    let vm = Vm::new("vm", VmOptions::default());
    let f = vm.facts();
    assert_eq!(f["guest_page"], "2m");
    assert_eq!(f["thp"], "on");
    assert_ne!(
        f["kvm_flavour"], "none",
        "KVM works here, so a flavour must be found"
    );
    assert!(["yes", "no"].contains(&f["host_nested"].as_str()));
    assert!(vm::tsc_khz().unwrap() > 100_000);
}
