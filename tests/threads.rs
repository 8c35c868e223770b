//! `--threads 2` for real: cpu.int, cpu.fp and mem.stream run on two runner threads natively
//! and in the container, and on two vCPUs in the vm; each thread proves it entered the
//! image (its control block's `ran`) on its own pinned CPU, every thread's checksum equals
//! the plain-Rust reference of its share, and a workload that does not split runs on one
//! thread. Needs two CPUs, root, namespaces, overlayfs and /dev/kvm (CI has them); without
//! them the tests fail with the reason.

use std::time::Duration;

use isobench::env::container::Container;
use isobench::env::native::Native;
use isobench::env::vm::{Vm, VmOptions};
use isobench::env::{Environment, InstanceSpec};
use isobench::plan::ContainerOptions;
use isobench::workload::threads::{check_threads, scale, share};
use isobench::workload::{by_name, Prepared, Profile, Sizing, Span};

const QUICK_SHORT: Sizing = Sizing {
    profile: Profile::Quick,
    span: Span::Short,
};

/// The two CPUs the threads run on: the last two this process may use, thread 0 on the last.
fn two_cpus() -> Vec<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    let allowed: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect();
    assert!(
        allowed.len() >= 2,
        "these tests need two CPUs, this process may use {allowed:?}"
    );
    let n = allowed.len();
    vec![allowed[n - 1], allowed[n - 2]]
}

fn shares() -> Vec<Prepared> {
    ["cpu.int", "cpu.fp", "mem.stream", "sys.call"]
        .iter()
        .map(|n| share(&(by_name(n).unwrap().prepare)(QUICK_SHORT, 0x7e4d), 2))
        .collect()
}

fn spec(dir: &tempfile::TempDir, cpus: &[usize]) -> InstanceSpec {
    InstanceSpec {
        work_size: shares().iter().map(|p| p.work_bytes).max().unwrap(),
        disk_size: 0,
        scratch: dir.path().to_path_buf(),
        deadline: Duration::from_secs(120),
        thp: true,
        cpu: Some(cpus[0]),
        threads: 2,
        thread_cpus: cpus.to_vec(),
    }
}

/// Every splitting workload on both threads of `env`, validated; sys.call on one.
fn both_threads_run_and_validate(mut env: Box<dyn Environment>) {
    let cpus = two_cpus();
    let dir = tempfile::tempdir().expect("tempdir");
    env.start(&spec(&dir, &cpus))
        .unwrap_or_else(|e| panic!("starting {}: {e}", env.label()));
    let hz = isobench::tsc::calibrate(Duration::from_millis(10));
    for p in shares() {
        let name = p.invocation.name;
        let w = by_name(name).unwrap();
        let raw = env
            .invoke(&p.invocation)
            .unwrap_or_else(|e| panic!("{} {name}: {e}", env.label()));
        if name == "sys.call" {
            assert!(raw.threads.is_empty(), "{name} does not split: one thread");
            (w.interpret)(&p, &raw, hz).expect("sys.call validates on one thread");
            continue;
        }
        assert_eq!(raw.threads.len(), 2, "{} {name}: both threads", env.label());
        for (t, th) in raw.threads.iter().enumerate() {
            assert_eq!(th.ran, t as u64 + 1, "{name}: thread {t} entered the image");
            assert_eq!(
                th.host_cpu,
                Some(cpus[t]),
                "{} {name}: thread {t} ran on its own pinned CPU",
                env.label()
            );
        }
        // A joint repetition lasts at least as long as each thread's own work in it, and
        // is each thread's span between the barriers around it, the longest one.
        for (t, th) in raw.threads.iter().enumerate() {
            assert_eq!(th.records.len(), raw.records.len(), "{name}: thread {t}");
            for (j, (own, joint)) in th.records.iter().zip(&raw.records).enumerate() {
                assert!(
                    own <= joint,
                    "{name}: thread {t} rep {j}: own {own} > joint {joint}"
                );
                let span = th.stamps[2 * j + 1] - th.stamps[2 * j];
                assert!(
                    span <= *joint,
                    "{name}: thread {t} rep {j}: span {span} > {joint}"
                );
            }
        }
        let mut metrics = (w.interpret)(&p, &raw, hz)
            .unwrap_or_else(|e| panic!("{} {name}: thread 0: {e}", env.label()));
        check_threads(&p, &raw).unwrap_or_else(|e| panic!("{} {name}: {e}", env.label()));
        let one = metrics[0].value;
        scale(&mut metrics, raw.threads.len());
        assert_eq!(
            metrics[0].value,
            2.0 * one,
            "a throughput counts both shares"
        );
        assert!(
            raw.cycles > 0 && raw.records.iter().all(|r| *r > 0),
            "{name}: joint repetitions timed"
        );
        // A corrupted thread checksum is caught: thread 1's share is checked too.
        let mut bad = raw.clone();
        bad.threads[1].checksum ^= 1;
        assert!(
            check_threads(&p, &bad).is_err(),
            "{name}: thread 1's checksum is checked"
        );
    }
    env.stop().expect("stop");
}

#[test]
fn native_runs_two_threads() {
    both_threads_run_and_validate(Box::new(Native::new("native")));
}

#[test]
fn container_runs_two_threads() {
    both_threads_run_and_validate(Box::new(Container::new(
        "container",
        ContainerOptions::default(),
    )));
}

#[test]
fn vm_runs_two_vcpus() {
    both_threads_run_and_validate(Box::new(Vm::new("vm", VmOptions::default())));
}

/// One thread that faults fails the whole invocation promptly, as a crash (the other thread
/// is not left waiting at the barrier until the deadline), and the instance starts again.
fn a_faulting_thread_fails_the_invocation(mut env: Box<dyn Environment>) {
    let cpus = two_cpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(&dir, &cpus);
    s.deadline = Duration::from_secs(60);
    env.start(&s).expect("start");
    let mut inv = shares()[0].invocation.clone();
    inv.flags |= isobench_abi::FLAG_TEST_FAULT_LAST_THREAD;
    let t0 = std::time::Instant::now();
    let err = env
        .invoke(&inv)
        .expect_err("a faulting thread fails the invocation");
    assert!(
        matches!(err, isobench::env::EnvError::Crashed { .. }),
        "{}: a crash, not {err}",
        env.label()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "{}: the failure took {:?}, the other thread waited for the deadline",
        env.label(),
        t0.elapsed()
    );
    eprintln!("{}: {err}", env.label());
    env.start(&s).expect("start again after the crash");
    env.invoke(&shares()[0].invocation)
        .expect("runs again after the crash");
    env.stop().expect("stop");
}

#[test]
fn native_thread_fault_is_a_crash() {
    a_faulting_thread_fails_the_invocation(Box::new(Native::new("native")));
}

#[test]
fn vm_vcpu_fault_is_a_crash() {
    a_faulting_thread_fails_the_invocation(Box::new(Vm::new("vm", VmOptions::default())));
}
