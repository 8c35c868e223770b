//! vm environment costs on real KVM: launch to the image's first instruction (a fresh VM
//! per sample), and one null hostcall round trip (guest `out` → VMM → guest). Needs
//! read-write /dev/kvm.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use isobench::env::vm::{self, Vm, VmOptions};
use isobench::env::{Environment, InstanceSpec, Invocation};
use isobench_abi::*;

fn spec(dir: &tempfile::TempDir) -> InstanceSpec {
    InstanceSpec {
        work_size: 2 << 20,
        disk_size: 0,
        scratch: dir.path().to_path_buf(),
        deadline: Duration::from_secs(30),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

fn inv(workload: u32, params: &[u64]) -> Invocation {
    Invocation {
        name: "bench",
        workload,
        params: isobench::workload::params(params),
        flags: 0,
    }
}

fn benches(c: &mut Criterion) {
    if let Err(reason) = Vm::probe() {
        panic!("the vm benchmarks need KVM: {reason}");
    }
    let khz = vm::tsc_khz().expect("KVM_GET_TSC_KHZ") as f64;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(&dir);
    let mut g = c.benchmark_group("vm");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let mut fresh = Vm::new("vm", VmOptions::default());
    g.bench_function("start: KVM_CREATE_VM to first image instruction", |b| {
        b.iter_custom(|iters| {
            let cycles: u64 = (0..iters)
                .map(|_| fresh.measure_start(&s).expect("measure_start"))
                .sum();
            Duration::from_nanos((cycles as f64 / khz * 1e6) as u64)
        })
    });

    let mut vm = Vm::new("vm", VmOptions::default());
    vm.start(&s).expect("start");
    let null = inv(WL_TEST_HOSTCALL, &[HC_NULL as u64]);
    let bare = inv(WL_START, &[]);
    g.bench_function("invocation without hostcall (entry + HC_DONE)", |b| {
        b.iter(|| vm.invoke(&bare).expect("invoke"))
    });
    g.bench_function("invocation with one null hostcall", |b| {
        b.iter(|| vm.invoke(&null).expect("invoke"))
    });
    // The round trip alone: alternate the two invocations, keep the difference.
    g.bench_function("null hostcall round trip (difference)", |b| {
        b.iter_custom(|iters| {
            let mut with = Duration::ZERO;
            let mut without = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                vm.invoke(&null).expect("invoke");
                with += t.elapsed();
                let t = Instant::now();
                vm.invoke(&bare).expect("invoke");
                without += t.elapsed();
            }
            with.saturating_sub(without)
        })
    });
    g.finish();
    vm.stop().expect("stop");
}

criterion_group!(vm_benches, benches);
criterion_main!(vm_benches);
