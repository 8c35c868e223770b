//! `io.seq`: sequential write + fsync, then sequential read of a scratch file; MB/s per
//! phase and per-chunk latency percentiles.
//!
//! Contract with `image/src/kernels/io_seq.rs`: params [file bytes, chunk bytes, seed]; the
//! file holds `disk_word(seed, seed, word index)`; records = [write × chunks, flush,
//! read × chunks] cycles, each IO alone; results[0] = write phase (fills, writes, fsync),
//! results[1] = read phase (reads and the checksum's folds), each one elapsed span;
//! results[2] = the fills' cycles, results[3] = the folds' cycles; checksum = per chunk, four
//! interleaved fold lanes (see [`fold_chunk`]), starting from `seed`.
//!
//! Each invocation first drops the file from the host page cache (untimed, as fio's
//! `invalidate=1` does before a job), so the write phase starts from the same state whichever
//! workload ran before. Throughput is the file's bytes over the phase's elapsed time, as fio and `dd` count it;
//! the per-chunk records are latency alone (docs/METHODOLOGY.md, "IO: bytes over the
//! phase's elapsed time"). `read_fold_ms` and `write_fill_ms` say how much of each phase
//! was the kernel's own data work.
//!
//! One long operation per invocation (a file written, flushed and read back once), so it is
//! not repeated and the span does not change it; the per-chunk records feed the latency
//! percentiles (docs/METHODOLOGY.md, "Repetitions and the per-sample value"). The primary
//! metric is `read` (MB/s): reads from a cold host page cache take the whole path through
//! the isolation layer to the device for every chunk, while the write phase's time includes
//! the closing fsync (a third to a half of it on the development machines), which measures
//! the device and the filesystem as much as the isolation.

use isobench_abi::WL_IO_SEQ;

use super::gen::{disk_word, fold};
use super::latency::percentile_metrics;
use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Sizing, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "io.seq",
    id: WL_IO_SEQ,
    description: "sequential 1 MiB writes + fsync, drop cache, sequential reads (quick: 32 MiB, full: 1 GiB file) (MB/s, µs)",
    prepare,
    interpret,
    primary: |_| "read".into(),
    repeated: false,
};

const CHUNK: u64 = 1 << 20;

/// io.seq's file: from the start of the disk (io.rand's follows it).
pub(super) fn file_bytes(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 32 << 20,
        Profile::Full => 1 << 30,
    }
}

/// The checksum of one chunk of data words (a multiple of 4): word j goes to lane j mod 4,
/// lane k starts at `h ^ k`, and the lanes fold into `h` in order at the end.
pub fn fold_chunk(h: u64, words: impl IntoIterator<Item = u64>) -> u64 {
    let mut lanes = [h, h ^ 1, h ^ 2, h ^ 3];
    for (j, w) in words.into_iter().enumerate() {
        lanes[j % 4] = fold(lanes[j % 4], w);
    }
    lanes.iter().fold(h, |h, &l| fold(h, l))
}

/// The reference checksum: the pattern, chunk by chunk in file order.
pub fn reference(file: u64, chunk: u64, seed: u64) -> u64 {
    let words = chunk / 8;
    (0..file / chunk).fold(seed, |h, c| {
        fold_chunk(
            h,
            (c * words..(c + 1) * words).map(|i| disk_word(seed, seed, i)),
        )
    })
}

fn prepare(sizing: Sizing, seed: u64) -> Prepared {
    let file = file_bytes(sizing.profile);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_IO_SEQ,
            params: params(&[file, CHUNK, seed]),
            flags: 0,
        },
        // Two chunk buffers, then the data's base block.
        work_bytes: 2 * CHUNK + isobench_abi::DISK_BLOCK,
        disk_bytes: file,
        expected: Expected::Exact(reference(file, CHUNK, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [file, chunk, ..] = p.invocation.params;
    let chunks = (file / chunk) as usize;
    if raw.records.len() != 2 * chunks + 1 {
        return Err(ChecksumMismatch {
            workload: WORKLOAD.name.into(),
            got: format!("{} latency records", raw.records.len()),
            expected: format!("{} (writes, fsync, reads)", 2 * chunks + 1),
        });
    }
    let (writes, rest) = raw.records.split_at(chunks);
    let (flush, reads) = rest.split_at(1);
    let mbps = |cycles: u64| file as f64 / (cycles as f64 / tsc_hz) / 1e6;
    let ms = |cycles: u64| cycles as f64 / tsc_hz * 1e3;
    let mut m = vec![
        Metric {
            name: "write".into(),
            value: mbps(raw.results[0]),
            unit: "MB/s".into(),
            better: Better::Higher,
        },
        Metric {
            name: "read".into(),
            value: mbps(raw.results[1]),
            unit: "MB/s".into(),
            better: Better::Higher,
        },
        Metric {
            name: "fsync_ms".into(),
            value: ms(flush[0]),
            unit: "ms".into(),
            better: Better::Lower,
        },
        Metric {
            name: "write_fill_ms".into(),
            value: ms(raw.results[2]),
            unit: "ms".into(),
            better: Better::Lower,
        },
        Metric {
            name: "read_fold_ms".into(),
            value: ms(raw.results[3]),
            unit: "ms".into(),
            better: Better::Lower,
        },
    ];
    m.extend(percentile_metrics("write", writes, tsc_hz));
    m.extend(percentile_metrics("read", reads, tsc_hz));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_of_one_chunk_of_four_words_by_hand() {
        let lane = |k: u64| fold(3 ^ k, disk_word(3, 3, k));
        let h = (0..4).fold(3, |h, k| fold(h, lane(k)));
        assert_eq!(reference(32, 32, 3), h);
        assert_eq!(reference(0, 32, 3), 3);
    }

    #[test]
    fn lanes_take_every_fourth_word_and_chunks_chain() {
        // Eight words: lane k folds words k and k + 4.
        let w: Vec<u64> = (10..18).collect();
        let lane = |k: usize| fold(fold(7 ^ k as u64, w[k]), w[k + 4]);
        let h = (0..4).fold(7, |h, k| fold(h, lane(k)));
        assert_eq!(fold_chunk(7, w.iter().copied()), h);
        // Two chunks: the second starts from the first's result.
        let one = fold_chunk(5, (0..4).map(|i| disk_word(5, 5, i)));
        let two = fold_chunk(one, (4..8).map(|i| disk_word(5, 5, i)));
        assert_eq!(reference(64, 32, 5), two);
    }
}
