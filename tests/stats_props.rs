//! Properties of the overhead statistics on synthetic paired data: interval coverage,
//! identical inputs, a known slowdown, seed determinism.

mod common;

use common::rand_distr_free::normal;
use isobench::analysis::{analyze, AnalysisConfig};
use isobench::results::SampleRow;
use isobench::stats::bootstrap::estimate_mean;
use isobench::stats::paired::{log_from_overhead, overhead_from_log, pair, Better};
use isobench::stats::verdict::Verdict;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn row(round: u32, env: &str, value: f64, better: &str) -> SampleRow {
    SampleRow {
        round,
        env: env.into(),
        workload: "cpu.int".into(),
        metric: "hash".into(),
        value,
        unit: "MB/s".into(),
        better: common::better(better),
        cycles: 1,
        wall_ns: 1,
    }
}

/// Paired log-normal rounds: native = base·e^(drift+ε₁), env = base·(1+effect)·e^(drift+ε₂)
/// for a lower-is-better metric (so the true overhead is `effect`).
fn lognormal_rounds(n: u32, effect: f64, noise: f64, seed: u64) -> Vec<SampleRow> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for r in 0..n {
        let drift = 0.02 * normal(&mut rng);
        rows.push(row(
            r,
            "native",
            100.0 * (drift + noise * normal(&mut rng)).exp(),
            "lower",
        ));
        rows.push(row(
            r,
            "vm",
            100.0 * (1.0 + effect) * (drift + noise * normal(&mut rng)).exp(),
            "lower",
        ));
    }
    rows
}

fn config(seed: u64, resamples: usize) -> AnalysisConfig {
    AnalysisConfig {
        margin: 0.01,
        seed,
        resamples,
    }
}

#[test]
fn interval_covers_the_true_ratio_at_about_the_stated_rate() {
    // 200 seeded trials, 20 rounds each, true overhead 3%, 2% noise per sample.
    let effect = 0.03;
    let trials = 200;
    let mut covered = 0;
    for trial in 0..trials {
        let rows = lognormal_rounds(20, effect, 0.02, 1000 + trial);
        let a = analyze(&rows, config(trial, 2000)).unwrap();
        let o = a.metrics[0].comparison("vm").unwrap().overhead.unwrap();
        if o.ci95.contains(effect) {
            covered += 1;
        }
    }
    eprintln!("95% interval coverage: {covered}/{trials}");
    assert!(
        covered >= 180,
        "95% interval covered the true overhead in {covered}/{trials} trials"
    );
    // And it is not trivially wide: coverage is not 100% by inflating the interval.
    assert!(
        covered < trials,
        "coverage {covered}/{trials} suspiciously perfect"
    );
}

#[test]
fn higher_is_better_uses_the_inverse_ratio() {
    // Throughput 5% lower in every round: overhead = native/env − 1 = 1/0.95 − 1.
    let rows: Vec<SampleRow> = (0..10)
        .flat_map(|r| {
            [
                row(r, "native", 100.0, "higher"),
                row(r, "container", 95.0, "higher"),
            ]
        })
        .collect();
    let a = analyze(&rows, config(3, 1000)).unwrap();
    let o = a.metrics[0]
        .comparison("container")
        .unwrap()
        .overhead
        .unwrap();
    assert!((o.estimate - (1.0 / 0.95 - 1.0)).abs() < 1e-12);
}

#[test]
fn too_few_rounds_gives_no_verdict() {
    let rows = lognormal_rounds(4, 0.5, 0.01, 7);
    let a = analyze(&rows, config(1, 500)).unwrap();
    let c = a.metrics[0].comparison("vm").unwrap();
    assert_eq!(c.verdict, Verdict::TooFewRounds { n: 4 });
    assert!(c.verdict.describe(0.01).starts_with("too few rounds (n<5"));
    assert!(c.overhead.is_some(), "an estimate is still shown");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn identical_inputs_give_ratio_one_and_within(
        values in prop::collection::vec(1e-3f64..1e9, 5..40),
        higher in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let better = if higher { "higher" } else { "lower" };
        let rows: Vec<SampleRow> = values
            .iter()
            .enumerate()
            .flat_map(|(r, v)| [row(r as u32, "native", *v, better), row(r as u32, "native-b", *v, better)])
            .collect();
        let a = analyze(&rows, config(seed, 500)).unwrap();
        let c = a.metrics[0].comparison("native-b").unwrap();
        let o = c.overhead.unwrap();
        prop_assert_eq!(o.estimate, 0.0);
        prop_assert_eq!(o.ci95.low, 0.0);
        prop_assert_eq!(o.ci95.high, 0.0);
        prop_assert_eq!(c.verdict, Verdict::Within);
    }

    #[test]
    fn a_known_five_percent_slowdown_is_above(seed in any::<u64>(), noise in 0.0f64..0.01) {
        let rows = lognormal_rounds(30, 0.05, noise, seed);
        let a = analyze(&rows, config(seed, 1000)).unwrap();
        let c = a.metrics[0].comparison("vm").unwrap();
        prop_assert_eq!(c.verdict, Verdict::Above);
        let o = c.overhead.unwrap();
        prop_assert!(o.ci95.low > 0.01 && o.ci95.contains(o.estimate));
    }

    #[test]
    fn same_seed_same_result(seed in any::<u64>(), data_seed in any::<u64>()) {
        let rows = lognormal_rounds(12, 0.01, 0.02, data_seed);
        let a = analyze(&rows, config(seed, 1000)).unwrap();
        let b = analyze(&rows, config(seed, 1000)).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn bootstrap_interval_contains_the_mean_and_nests(
        values in prop::collection::vec(-1.0f64..1.0, 1..30),
        seed in any::<u64>(),
    ) {
        let e = estimate_mean(&values, 500, seed);
        prop_assert!(e.ci95.low <= e.ci90.low + 1e-15 && e.ci90.high <= e.ci95.high + 1e-15);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(e.ci95.low >= min - 1e-12 && e.ci95.high <= max + 1e-12);
    }

    #[test]
    fn log_ratio_round_trips(o in -0.99f64..100.0, base in 1e-3f64..1e6) {
        prop_assert!((overhead_from_log(log_from_overhead(o)) - o).abs() < 1e-9 * (1.0 + o.abs()));
        // A lower-is-better env at base·(1+o) is o worse; a higher-is-better env at
        // base/(1+o) likewise.
        let l = pair(&[(0, base)], &[(0, base * (1.0 + o))], Better::Lower);
        let h = pair(&[(0, base)], &[(0, base / (1.0 + o))], Better::Higher);
        prop_assert!((overhead_from_log(l.log_ratios[0]) - o).abs() < 1e-9 * (1.0 + o.abs()));
        prop_assert!((overhead_from_log(h.log_ratios[0]) - o).abs() < 1e-9 * (1.0 + o.abs()));
    }
}
