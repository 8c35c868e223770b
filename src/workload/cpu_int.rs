//! `cpu.int`: integer hashing over an L1-resident buffer; MB/s hashed.
//!
//! Contract with `image/src/kernels/cpu_int.rs`: params [buffer bytes, passes, seed];
//! checksum = final hash; cycles = the hashing passes.

use isobench_abi::WL_CPU_INT;

use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "cpu.int",
    id: WL_CPU_INT,
    description: "integer hashing over a 16 KiB L1-resident buffer (MB/s)",
    prepare,
    interpret,
};

const BUFFER_BYTES: u64 = 16 * 1024;

fn passes(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 40_000,
        Profile::Full => 200_000,
    }
}

/// The reference: the same hash, written independently in plain Rust.
pub fn reference(bytes: u64, passes: u64, seed: u64) -> u64 {
    let mut x = seed;
    let buf: Vec<u64> = (0..bytes / 8)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x
        })
        .collect();
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..passes {
        for w in &buf {
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
            h ^= h >> 29;
        }
    }
    h
}

fn prepare(profile: Profile, seed: u64) -> Prepared {
    let passes = passes(profile);
    Prepared {
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_CPU_INT,
            params: params(&[BUFFER_BYTES, passes, seed]),
            flags: 0,
        },
        work_bytes: BUFFER_BYTES,
        disk_bytes: 0,
        expected: Expected::Exact(reference(BUFFER_BYTES, passes, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let secs = raw.cycles as f64 / tsc_hz;
    let bytes = (p.invocation.params[0] * p.invocation.params[1]) as f64;
    Ok(vec![Metric {
        name: "hash".into(),
        value: bytes / secs / 1e6,
        unit: "MB/s".into(),
        better: Better::Higher,
    }])
}
