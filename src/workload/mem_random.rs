//! `mem.random`: HPCC RandomAccess over a table of 2^k u64; GUPS (giga-updates per second).
//!
//! Contract with `image/src/kernels/mem_random.rs`: params [k, updates]; table T[i] = i,
//! 128 interleaved LFSR streams that together walk x^1 .. x^updates, `T[ran & (n-1)] ^= ran`;
//! checksum = XOR over i of rotl(T[i], i mod 64); cycles = the update loop.
//!
//! The reference needs no table: rotl is linear over XOR, so the checksum equals
//! XOR_i rotl(i, i mod 64) ^ XOR over updates of rotl(ran, (ran & (n-1)) mod 64), with the
//! sequence stepped once from 1 (which also checks the image's HPCC_starts jump-ahead).

use isobench_abi::WL_MEM_RANDOM;

use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "mem.random",
    id: WL_MEM_RANDOM,
    description:
        "HPCC RandomAccess (quick: 32 MiB table, 1× updates; full: 512 MiB, 4× updates) (GUPS)",
    prepare,
    interpret,
};

const POLY: u64 = 7;

/// (log2 table entries, updates) per profile. HPCC does 4 updates per entry; quick does 1.
fn size(profile: Profile) -> (u64, u64) {
    match profile {
        Profile::Quick => (22, 1 << 22),
        Profile::Full => (26, 4 << 26),
    }
}

/// One step of HPCC's LFSR.
pub fn step(r: u64) -> u64 {
    (r << 1) ^ if (r as i64) < 0 { POLY } else { 0 }
}

/// The reference checksum, without a table.
pub fn reference(log2n: u64, updates: u64) -> u64 {
    let n = 1u64 << log2n;
    let mask = n - 1;
    let mut h = (0..n).fold(0u64, |h, i| h ^ i.rotate_left((i & 63) as u32));
    let mut ran = 1u64;
    for _ in 0..updates {
        ran = step(ran);
        h ^= ran.rotate_left(((ran & mask) & 63) as u32);
    }
    h
}

fn prepare(profile: Profile, _seed: u64) -> Prepared {
    let (k, updates) = size(profile);
    Prepared {
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_MEM_RANDOM,
            params: params(&[k, updates]),
            flags: 0,
        },
        work_bytes: 8 << k,
        disk_bytes: 0,
        expected: Expected::Exact(reference(k, updates)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let updates = p.invocation.params[1] as f64;
    let secs = raw.cycles as f64 / tsc_hz;
    Ok(vec![Metric {
        name: "gups".into(),
        value: updates / secs / 1e9,
        unit: "GUPS".into(),
        better: Better::Higher,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct simulation with a table, for tiny sizes.
    fn with_table(log2n: u64, updates: u64) -> u64 {
        let n = 1usize << log2n;
        let mut t: Vec<u64> = (0..n as u64).collect();
        let mut ran = 1u64;
        for _ in 0..updates {
            ran = step(ran);
            t[(ran as usize) & (n - 1)] ^= ran;
        }
        t.iter()
            .enumerate()
            .fold(0, |h, (i, &x)| h ^ x.rotate_left((i & 63) as u32))
    }

    #[test]
    fn lfsr_steps_by_hand() {
        assert_eq!(step(1), 2);
        assert_eq!(step(1 << 62), 1 << 63);
        // The top bit set: shifted out, POLY folded in.
        assert_eq!(step(1 << 63), 7);
        assert_eq!(step((1 << 63) | 1), 2 ^ 7);
    }

    #[test]
    fn tableless_reference_equals_a_table_simulation() {
        for (k, u) in [(3, 0), (3, 1), (3, 200), (7, 1000), (10, 5000)] {
            assert_eq!(reference(k, u), with_table(k, u), "k={k} updates={u}");
        }
    }

    #[test]
    fn no_updates_leaves_the_identity_table() {
        // T[i] = i for n = 8: XOR of rotl(i, i) = 0^2^8^24^64^160^384^896.
        assert_eq!(reference(3, 0), 2 ^ 8 ^ 24 ^ 64 ^ 160 ^ 384 ^ 896);
    }
}
