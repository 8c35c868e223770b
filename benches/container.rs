//! Container start-up (`start`, docs/METHODOLOGY.md "Start-up"): a fresh container (namespaces, cgroup, overlay,
//! pivot_root) from launch to the image's first instruction. Needs root, like the container
//! environment itself; fails with the reason when it cannot run.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use isobench::env::container::{Container, ContainerOptions};
use isobench::env::{Environment, InstanceSpec};

fn start_up(c: &mut Criterion) {
    if let Err(why) = Container::probe() {
        panic!("the container benchmark needs the container environment: {why}");
    }
    let scratch = tempfile::tempdir().expect("scratch dir");
    let spec = InstanceSpec {
        work_size: 4096,
        disk_size: 0,
        scratch: scratch.path().to_path_buf(),
        deadline: Duration::from_secs(30),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    };
    let hz = isobench::tsc::calibrate(Duration::from_millis(10));
    let mut env = Container::new("container", ContainerOptions::default());
    // Per-step breakdown, summed over the measured launches.
    let mut steps: Vec<(&'static str, u64)> = Vec::new();
    let mut launches = 0u64;
    c.bench_function("container/measure_start", |b| {
        b.iter_custom(|iters| {
            let mut total = 0u64;
            for _ in 0..iters {
                total += env.measure_start(&spec).expect("container start-up");
                let bd = env.last_start_breakdown();
                if steps.is_empty() {
                    steps = bd.iter().map(|&(n, _)| (n, 0)).collect();
                }
                for (acc, (_, c)) in steps.iter_mut().zip(bd) {
                    acc.1 += c;
                }
                launches += 1;
            }
            Duration::from_secs_f64(total as f64 / hz)
        })
    });
    eprintln!("container start-up, mean per step over {launches} launches:");
    for (name, c) in &steps {
        eprintln!(
            "  {name:<45} {:8.3} ms",
            *c as f64 / launches.max(1) as f64 / hz * 1e3
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = start_up
}
criterion_main!(benches);
