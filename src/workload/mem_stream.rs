//! `mem.stream`: STREAM copy, scale, add, triad (McCalpin); GB/s per kernel.
//!
//! Contract with `image/src/kernels/mem_stream.rs`: params [n elements per array, ntimes];
//! records = 4 × ntimes per-kernel cycle counts (copy, scale, add, triad per iteration);
//! results[0..3] = bits of the sums of a, b, c; checksum = fold over the bits of every
//! element of a, then b, then c.
//!
//! Repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"): each kernel of
//! each iteration is one repetition of that kernel. Bytes per element are counted as STREAM
//! counts them, 16 (copy, scale) and 24 (add, triad); the first iteration is excluded, as
//! STREAM excludes it. Each kernel reports its rate from the **median** of its times over
//! iterations 2..ntimes under its name (`copy`, …; `triad` is the primary metric), and from
//! their sum under `<kernel>.mean` (STREAM itself reports the best time, which isobench does
//! not). `Span::Short` runs STREAM's 10 iterations (quick: about 35 ms timed); `Span::CfsSafe`
//! runs enough iterations to move 20 GiB as STREAM counts bytes, at least 10 and at most 1000
//! (quick: 128 iterations, about 0.5 s). Validation follows
//! STREAM: the expected a, b, c evolve
//! analytically from (1, 2, 0); each array's sum must match n × its value within STREAM's
//! relative epsilon (1e-13). Stricter than STREAM, the checksum also requires every element
//! to be bit-exact (the values stay integers below 2^53, so IEEE arithmetic is exact), which
//! is what lets a one-bit corruption be caught at all.
//!
//! Copy: STREAM's copy loop, built as STREAM is usually built (`gcc -O3`), becomes a call
//! to glibc's `memcpy`, whose stores are non-temporal or cached depending on the size it
//! moves; copy does what `memcpy` would do on this host for the size each thread copies, or
//! what `--stream-copy` forces ([`super::stream_copy`]), and `run.json` records which ran and
//! why (`config.options["mem.stream.copy"]`). The other kernels use cached stores, as gcc
//! compiles them.
//!
//! Sizes: `--full` makes each array 4× the last-level cache (read from sysfs at run time,
//! 480 MiB per array if unreadable); `--quick` uses 16 MiB arrays, which is *not* STREAM's
//! rule (on a host with a large LLC part of it may be cache-resident) and says so in the
//! description.

use std::path::Path;

use isobench_abi::{FLAG_STREAM_NT_COPY, WL_MEM_STREAM};

use super::stream_copy::{self, CopyChoice};

use super::gen::fold;
use super::{
    check, check_records, params, repeated, Better, ChecksumMismatch, Expected, Metric, Prepared,
    Profile, Sizing, Span, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "mem.stream",
    id: WL_MEM_STREAM,
    description: "STREAM copy/scale/add/triad in the run's ISA tier, median of the iterations; copy stores as glibc's memcpy (what gcc makes of stream.c's copy) would at this size on this host, non-temporal at or above glibc's threshold, else cached (--stream-copy forces either; run.json's mem.stream.copy says which ran and why) (full: arrays 4× LLC; quick: 16 MiB arrays, below STREAM's rule) (GB/s)",
    prepare,
    interpret,
    primary: |_| "triad".into(),
    repeated: true,
};

const SCALAR: f64 = 3.0;
/// STREAM's validation epsilon for f64.
const EPSILON: f64 = 1e-13;
/// STREAM's iteration count: `Span::Short`'s, and the least of `Span::CfsSafe`.
const NTIMES: u64 = 10;
/// The most iterations the image accepts.
const MAX_NTIMES: u64 = 1000;
/// Bytes (as STREAM counts them) a `Span::CfsSafe` invocation moves at least: 20 GiB, over
/// 350 ms at 50 GB/s.
const CFS_BYTES: u64 = 20 << 30;
/// STREAM's bytes per element of one iteration: copy + scale + add + triad.
const BYTES_PER_ITERATION_ELEMENT: u64 = 16 + 16 + 24 + 24;
const QUICK_ARRAY_BYTES: u64 = 16 << 20;
const FALLBACK_ARRAY_BYTES: u64 = 480 << 20;
const KERNELS: [(&str, f64); 4] = [
    ("copy", 16.0),
    ("scale", 16.0),
    ("add", 24.0),
    ("triad", 24.0),
];

/// Size in bytes of the highest-level data or unified cache of cpu0, from
/// `<cpu0>/cache/index*/{level,type,size}` (sizes like `32768K`).
pub fn last_level_cache_bytes(cpu0: &Path) -> Option<u64> {
    let mut best: Option<(u32, u64)> = None;
    for entry in std::fs::read_dir(cpu0.join("cache")).ok()?.flatten() {
        let dir = entry.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        if kind.trim() == "Instruction" {
            continue;
        }
        let Ok(level) = level.trim().parse::<u32>() else {
            continue;
        };
        let Some(bytes) = parse_cache_size(size.trim()) else {
            continue;
        };
        if best.is_none_or(|(l, _)| level > l) {
            best = Some((level, bytes));
        }
    }
    best.map(|(_, b)| b)
}

fn parse_cache_size(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok().map(|d| d * mult)
}

/// Make copy's stores what `choice` says for this (per-thread) invocation, and return the
/// sentence `run.json` records: [`super::stream_copy::decide`] on the bytes each thread
/// copies (`params[0]` elements) against this host's threshold.
pub fn set_copy(p: &mut Prepared, choice: CopyChoice) -> String {
    let per_thread = p.invocation.params[0] * 8;
    let llc = last_level_cache_bytes(Path::new("/sys/devices/system/cpu/cpu0"));
    let (nt, why) = stream_copy::decide(choice, per_thread, stream_copy::threshold(llc).as_ref());
    if nt {
        p.invocation.flags |= FLAG_STREAM_NT_COPY;
    } else {
        p.invocation.flags &= !FLAG_STREAM_NT_COPY;
    }
    why
}

/// Bytes per array for a profile (full: 4× the LLC, rounded up to a MiB).
pub fn array_bytes(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => QUICK_ARRAY_BYTES,
        Profile::Full => last_level_cache_bytes(Path::new("/sys/devices/system/cpu/cpu0"))
            .map(|llc| (4 * llc).next_multiple_of(1 << 20))
            .unwrap_or(FALLBACK_ARRAY_BYTES),
    }
}

/// STREAM's analytic expectation: the values of a, b, c after `ntimes` iterations.
pub fn expected_values(ntimes: u64) -> (f64, f64, f64) {
    let (mut a, mut b, mut c) = (1.0f64, 2.0f64, 0.0f64);
    a *= 2.0;
    for _ in 0..ntimes {
        c = a;
        b = SCALAR * c;
        c = a + b;
        a = b + SCALAR * c;
    }
    (a, b, c)
}

/// The reference checksum: n copies of each expected value, folded a, then b, then c.
pub fn reference(n: u64, ntimes: u64) -> u64 {
    let (a, b, c) = expected_values(ntimes);
    [a, b, c].iter().fold(0, |h, v| {
        let bits = v.to_bits();
        (0..n).fold(h, |h, _| fold(h, bits))
    })
}

/// Iterations for `n` elements per array and a span.
pub fn ntimes(n: u64, span: Span) -> u64 {
    match span {
        Span::Short => NTIMES,
        Span::CfsSafe => CFS_BYTES
            .div_ceil(BYTES_PER_ITERATION_ELEMENT * n.max(1))
            .clamp(NTIMES, MAX_NTIMES),
    }
}

fn prepare(sizing: Sizing, _seed: u64) -> Prepared {
    let bytes = array_bytes(sizing.profile);
    let n = bytes / 8;
    let ntimes = ntimes(n, sizing.span);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_MEM_STREAM,
            params: params(&[n, ntimes]),
            // Cached stores until `set_copy` decides for the run's thread count.
            flags: 0,
        },
        work_bytes: 3 * n * 8,
        disk_bytes: 0,
        expected: Expected::Exact(reference(n, ntimes)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    super::isa::check_ran(&p.invocation, raw)?;
    let [n, ntimes, ..] = p.invocation.params;
    let (a, b, c) = expected_values(ntimes);
    for (i, (array, v)) in [("a", a), ("b", b), ("c", c)].into_iter().enumerate() {
        let name = format!("{} (sum of array {array})", WORKLOAD.name);
        let exp = Expected::Approx {
            value: n as f64 * v,
            rel_tol: EPSILON,
        };
        check(&name, exp, raw.results[i])?;
    }
    check_records(
        WORKLOAD.name,
        raw,
        4 * ntimes,
        &format!("4 kernels × {ntimes} iterations"),
    )?;
    Ok(KERNELS
        .iter()
        .enumerate()
        .flat_map(|(k, &(name, bytes_per_elem))| {
            // Iterations 2..ntimes, as STREAM reports them.
            let reps: Vec<u64> = raw
                .records
                .chunks_exact(4)
                .skip(1)
                .map(|it| it[k])
                .collect();
            let bytes = bytes_per_elem * n as f64;
            repeated(p.span, name, "GB/s", Better::Higher, &reps, |c| {
                bytes / (c / tsc_hz) / 1e9
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::synthetic_run;
    use super::*;

    #[test]
    fn set_copy_flags_the_invocation_and_says_why() {
        let mut p = prepare(
            Sizing {
                profile: Profile::Quick,
                span: Span::Short,
            },
            1,
        );
        assert_eq!(p.invocation.flags & FLAG_STREAM_NT_COPY, 0);
        let why = set_copy(&mut p, CopyChoice::Nt);
        assert_ne!(p.invocation.flags & FLAG_STREAM_NT_COPY, 0, "{why}");
        let why = set_copy(&mut p, CopyChoice::Cached);
        assert_eq!(p.invocation.flags & FLAG_STREAM_NT_COPY, 0, "{why}");
        // 16 MiB arrays: below any glibc threshold seen (and below ¾ of an LLC ≥ 22 MiB).
        let why = set_copy(&mut p, CopyChoice::Auto);
        assert!(why.contains("16 MiB"), "{why}");
    }

    #[test]
    fn median_ignores_an_outlier_the_mean_does_not_and_the_first_iteration_is_excluded() {
        // A small stand-in for the real sizes: 1000 elements, 5 iterations, at 1 GHz.
        let (n, ntimes) = (1000u64, 5u64);
        let p = Prepared {
            span: Span::Short,
            invocation: Invocation {
                name: WORKLOAD.name,
                workload: WL_MEM_STREAM,
                params: params(&[n, ntimes]),
                flags: 0,
            },
            work_bytes: 24 * n,
            disk_bytes: 0,
            expected: Expected::Exact(reference(n, ntimes)),
        };
        // Every kernel 1000 cycles (1 µs), except: the first iteration (excluded) 10×, and
        // triad once 5× (a disturbance).
        let mut records = vec![1000u64; 4 * ntimes as usize];
        records[..4].fill(10_000);
        records[4 * 3 + 3] = 5000;
        let (a, b, c) = expected_values(ntimes);
        let run = |records: Vec<u64>| {
            let mut raw = synthetic_run(&p, records);
            raw.results[..3].copy_from_slice(&[
                (n as f64 * a).to_bits(),
                (n as f64 * b).to_bits(),
                (n as f64 * c).to_bits(),
            ]);
            raw
        };
        let m = interpret(&p, &run(records), 1e9).expect("interprets");
        let get = |name: &str| {
            m.iter()
                .find(|x| x.name == name)
                .map_or(f64::NAN, |x| x.value)
        };
        let close = |name: &str, v: f64| (get(name) - v).abs() < 1e-9 * v;
        // 16 kB (copy) or 24 kB (triad) in 1 µs.
        assert!(close("copy", 16.0), "{m:?}");
        assert!(close("copy.mean", 16.0), "{m:?}");
        assert!(close("triad", 24.0), "{m:?}");
        // Four iterations counted: 4000 + 4000 extra cycles in all.
        assert!(close("triad.mean", 24.0 * 4.0 / 8.0), "{m:?}");
        assert_eq!(m.len(), 8);
        let e = interpret(&p, &run(vec![1; 4]), 1e9)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 records"), "{e}");
    }

    #[test]
    fn cfs_safe_moves_at_least_its_bytes_and_short_is_stream_s_ten() {
        for n in [1u64 << 21, 1 << 24, 60 << 20] {
            assert_eq!(ntimes(n, Span::Short), 10);
            let t = ntimes(n, Span::CfsSafe);
            assert!((10..=MAX_NTIMES).contains(&t));
            assert!(
                t == 10 || t * BYTES_PER_ITERATION_ELEMENT * n >= CFS_BYTES,
                "{n}"
            );
        }
        assert_eq!(ntimes(1, Span::CfsSafe), MAX_NTIMES);
    }

    #[test]
    fn expected_values_follow_the_stream_recurrence_by_hand() {
        // a0 = 2; one iteration: c = 2, b = 6, c = 8, a = 6 + 24 = 30.
        assert_eq!(expected_values(1), (30.0, 6.0, 8.0));
        // Each iteration multiplies a by 15: b = 3a, c = 4a, a' = 15a.
        assert_eq!(expected_values(2), (450.0, 90.0, 120.0));
    }

    #[test]
    fn reference_of_one_element_per_array() {
        let h = fold(
            fold(fold(0, 30f64.to_bits()), 6f64.to_bits()),
            8f64.to_bits(),
        );
        assert_eq!(reference(1, 1), h);
    }

    #[test]
    fn cache_sizes_parse_and_the_highest_level_wins() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("x"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, (level, kind, size)) in [
            ("1", "Data", "48K"),
            ("1", "Instruction", "32K"),
            ("3", "Unified", "32768K"),
            ("2", "Unified", "1024K"),
        ]
        .iter()
        .enumerate()
        {
            let d = dir.path().join(format!("cache/index{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("level"), level).expect("write");
            std::fs::write(d.join("type"), kind).expect("write");
            std::fs::write(d.join("size"), size).expect("write");
        }
        assert_eq!(last_level_cache_bytes(dir.path()), Some(32 << 20));
        assert_eq!(last_level_cache_bytes(&dir.path().join("missing")), None);
    }

    #[test]
    fn full_arrays_are_at_least_four_times_the_llc() {
        let bytes = array_bytes(Profile::Full);
        if let Some(llc) = last_level_cache_bytes(Path::new("/sys/devices/system/cpu/cpu0")) {
            assert!(bytes >= 4 * llc);
        } else {
            assert_eq!(bytes, FALLBACK_ARRAY_BYTES);
        }
        assert_eq!(array_bytes(Profile::Quick), 16 << 20);
    }
}
