//! Each workload kernel run natively through the real image (one native instance, quick
//! parameters), timed by the image's own TSC cycles of its timed region; and the cost of the
//! timer itself (an `lfence; rdtsc` pair). `cargo bench --bench kernels` takes ~2 minutes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use isobench::env::native::Native;
use isobench::env::{Environment, InstanceSpec};
use isobench::workload::{catalogue, Prepared, Profile, Sizing, Span};

fn kernels(c: &mut Criterion) {
    let hz = isobench::tsc::calibrate(Duration::from_millis(20));
    let prepared: Vec<(&str, Prepared)> = catalogue()
        .iter()
        .map(|w| {
            let sizing = Sizing {
                profile: Profile::Quick,
                span: Span::Short,
            };
            (w.name, (w.prepare)(sizing, 1))
        })
        .collect();
    let scratch = tempfile::tempdir().expect("create a scratch dir for the native instance");
    let spec = InstanceSpec {
        work_size: prepared
            .iter()
            .map(|(_, p)| p.work_bytes)
            .max()
            .unwrap_or(0)
            .max(4096),
        disk_size: prepared
            .iter()
            .map(|(_, p)| p.disk_bytes)
            .max()
            .unwrap_or(0),
        scratch: scratch.path().to_path_buf(),
        deadline: Duration::from_secs(60),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    };
    let mut env = Native::new("native");
    env.start(&spec).expect("start the native environment");

    let mut g = c.benchmark_group("kernel");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, p) in &prepared {
        let w = catalogue()
            .iter()
            .find(|w| w.name == *name)
            .expect("from the catalogue");
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut cycles = 0u64;
                for _ in 0..iters {
                    let raw = env.invoke(&p.invocation).expect("invoke");
                    (w.interpret)(p, &raw, hz).expect("checksum verifies");
                    cycles += raw.cycles;
                }
                Duration::from_secs_f64(cycles as f64 / hz)
            })
        });
    }
    g.finish();
    env.stop().expect("stop the native environment");

    c.bench_function("timer/lfence_rdtsc_pair", |b| {
        b.iter(|| {
            let t0 = isobench::tsc::now();
            let t1 = isobench::tsc::now();
            black_box(t1.wrapping_sub(t0))
        })
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
