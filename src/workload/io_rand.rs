//! `io.rand`: 4 KiB random writes (+ fsync), then 4 KiB random reads from a cold cache, at
//! random block offsets of a file the kernel prepares; IOPS per op type and latency
//! percentiles.
//!
//! Contract with `image/src/kernels/io_rand.rs`: params [file bytes, writes, reads, seed,
//! fill chunk, disk offset of the file (after io.seq's file, so each workload drops only its
//! own pages)]; generation 0 of block b is `disk_word(seed, seed, word index in file)`, write
//! k writes generation k+1 (`disk_word(seed, seed ^ (k+1)·GEN, word index)`); block numbers are
//! `below(splitmix64(rng), blocks)` with rng = `seed ^ OFFSETS`, writes first, then reads;
//! records = [write × writes, flush, read × reads] cycles, each IO alone; results[0] = write
//! phase (fills, writes, fsync), results[1] = read phase (reads and folds), each one elapsed
//! span; checksum = fold of (block number, then its 512 words) per read, starting from
//! `seed`.
//!
//! IOPS are operations over the phase's elapsed time, as fio counts them at queue depth 1
//! (docs/METHODOLOGY.md, "IO: bytes over the phase's elapsed time"). Write IOPS count the
//! closing fsync in the time (the writes are durable when the phase ends, like `io.seq`'s
//! write phase); the percentiles are of the IOs alone.
//!
//! One long operation per invocation (a file prepared, written at random and read back), so
//! it is not repeated and the span does not change it; the per-operation records feed the
//! latency percentiles (docs/METHODOLOGY.md, "Repetitions and the per-sample value"). The
//! primary metric is `read_iops`: every 4 KiB read from a cold host page cache is one round
//! trip through the isolation layer to the device, while the write phase's time includes the
//! closing fsync, which measures the device and the filesystem as much as the isolation.

use isobench_abi::{DISK_BLOCK, WL_IO_RAND};

use super::gen::{below, disk_word, fold, splitmix64};
use super::latency::percentile_metrics;
use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Sizing, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "io.rand",
    id: WL_IO_RAND,
    description: "4 KiB random writes + fsync, drop cache, 4 KiB random reads (quick: 16 MiB file, 256 w + 512 r; full: 256 MiB, 8192 + 8192) (IOPS, µs)",
    prepare,
    interpret,
    primary: |_| "read_iops".into(),
    repeated: false,
};

const OFFSETS: u64 = 0x0ff5_e7a1_1234_5678;
const GEN: u64 = 0x5851_f42d_4c95_7f2d;
const FILL_CHUNK: u64 = 1 << 20;
const WORDS: u64 = DISK_BLOCK / 8;

/// (file bytes, writes, reads) per profile.
fn size(profile: Profile) -> (u64, u64, u64) {
    match profile {
        Profile::Quick => (16 << 20, 256, 512),
        Profile::Full => (256 << 20, 8192, 8192),
    }
}

/// The reference: replay the offsets, remember which write last touched each block, and
/// fold what every read must return.
pub fn reference(file: u64, writes: u64, reads: u64, seed: u64) -> u64 {
    let blocks = file / DISK_BLOCK;
    // generation[b] = 0 (the fill) or k+1 (write k was the last to touch block b).
    let mut generation = vec![0u64; blocks as usize];
    let mut rng = seed ^ OFFSETS;
    for k in 0..writes {
        let b = below(splitmix64(&mut rng), blocks);
        generation[b as usize] = k + 1;
    }
    let mut h = seed;
    for _ in 0..reads {
        let b = below(splitmix64(&mut rng), blocks);
        let g = generation[b as usize];
        let stamp_seed = if g == 0 {
            seed
        } else {
            seed ^ g.wrapping_mul(GEN)
        };
        h = fold(h, b);
        for i in 0..WORDS {
            h = fold(h, disk_word(seed, stamp_seed, b * WORDS + i));
        }
    }
    h
}

fn prepare(sizing: Sizing, seed: u64) -> Prepared {
    let (file, writes, reads) = size(sizing.profile);
    // After io.seq's file on the shared disk, so neither workload's cache drops touch the
    // other's pages.
    let at = super::io_seq::file_bytes(sizing.profile);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_IO_RAND,
            params: params(&[file, writes, reads, seed, FILL_CHUNK, at]),
            flags: 0,
        },
        // The fill chunk, then the data's base block.
        work_bytes: FILL_CHUNK + DISK_BLOCK,
        disk_bytes: at + file,
        expected: Expected::Exact(reference(file, writes, reads, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [_, writes, reads, ..] = p.invocation.params;
    let (w, r) = (writes as usize, reads as usize);
    if raw.records.len() != w + 1 + r {
        return Err(ChecksumMismatch {
            workload: WORKLOAD.name.into(),
            got: format!("{} latency records", raw.records.len()),
            expected: format!("{} (writes, fsync, reads)", w + 1 + r),
        });
    }
    let (wrec, rest) = raw.records.split_at(w);
    let rrec = &rest[1..];
    let iops = |ops: u64, cycles: u64| ops as f64 / (cycles as f64 / tsc_hz);
    let mut m = vec![
        Metric {
            name: "write_iops".into(),
            value: iops(writes, raw.results[0]),
            unit: "IOPS".into(),
            better: Better::Higher,
        },
        Metric {
            name: "read_iops".into(),
            value: iops(reads, raw.results[1]),
            unit: "IOPS".into(),
            better: Better::Higher,
        },
    ];
    m.extend(percentile_metrics("write", wrec, tsc_hz));
    m.extend(percentile_metrics("read", rrec, tsc_hz));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A literal simulation with a file image in memory, for tiny sizes.
    fn simulate(file: u64, writes: u64, reads: u64, seed: u64) -> u64 {
        let words = (file / 8) as usize;
        let mut disk: Vec<u64> = (0..words as u64)
            .map(|i| disk_word(seed, seed, i))
            .collect();
        let blocks = file / DISK_BLOCK;
        let mut rng = seed ^ OFFSETS;
        for k in 0..writes {
            let b = below(splitmix64(&mut rng), blocks);
            for i in 0..WORDS {
                let wi = b * WORDS + i;
                disk[wi as usize] = disk_word(seed, seed ^ (k + 1).wrapping_mul(GEN), wi);
            }
        }
        let mut h = seed;
        for _ in 0..reads {
            let b = below(splitmix64(&mut rng), blocks);
            h = fold(h, b);
            for i in 0..WORDS {
                h = fold(h, disk[(b * WORDS + i) as usize]);
            }
        }
        h
    }

    #[test]
    fn the_file_follows_io_seq_s_on_the_disk() {
        for profile in [Profile::Quick, Profile::Full] {
            let sizing = Sizing {
                profile,
                span: crate::workload::Span::Short,
            };
            let p = prepare(sizing, 1);
            let seq = super::super::io_seq::file_bytes(profile);
            assert_eq!(p.invocation.params[5], seq);
            assert_eq!(p.disk_bytes, seq + p.invocation.params[0]);
        }
    }

    #[test]
    fn reference_equals_a_literal_file_simulation() {
        for (blocks, w, r) in [(1, 0, 1), (1, 3, 2), (4, 10, 10), (16, 100, 50)] {
            let file = blocks * DISK_BLOCK;
            assert_eq!(reference(file, w, r, 11), simulate(file, w, r, 11));
        }
    }

    #[test]
    fn one_block_file_reads_the_last_write() {
        // With one block every op hits block 0; after 3 writes a read returns generation 3.
        let seed = 2;
        let mut h = fold(seed, 0);
        for i in 0..WORDS {
            h = fold(h, disk_word(seed, seed ^ 3u64.wrapping_mul(GEN), i));
        }
        assert_eq!(reference(DISK_BLOCK, 3, 1, seed), h);
    }
}
