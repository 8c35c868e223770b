//! `io.seq`: sequential write + fsync, then sequential read of a scratch file; MB/s per
//! phase and per-chunk latency percentiles.
//!
//! Contract with `image/src/kernels/io_seq.rs`: params [file bytes, chunk bytes, seed]; the
//! file holds `pattern_word(seed, word index)`; records = [write × chunks, flush,
//! read × chunks] cycles; results[0] = write phase (writes + fsync), results[1] = read
//! phase; checksum = fold over every word read, starting from `seed`.
//!
//! One long operation per invocation (a file written, flushed and read back once), so it is
//! not repeated and the span does not change it; the per-chunk records feed the latency
//! percentiles (docs/METHODOLOGY.md, "Repetitions and the per-sample value"). The primary
//! metric is `read` (MB/s): reads from a cold host page cache take the whole path through
//! the isolation layer to the device for every chunk, while the write phase's time includes
//! the closing fsync (a third to a half of it on the development machines), which measures
//! the device and the filesystem as much as the isolation.

use isobench_abi::WL_IO_SEQ;

use super::gen::{fold, pattern_word};
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

fn file_bytes(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 32 << 20,
        Profile::Full => 1 << 30,
    }
}

/// The reference checksum: the pattern folded in file order.
pub fn reference(file: u64, seed: u64) -> u64 {
    (0..file / 8).fold(seed, |h, i| fold(h, pattern_word(seed, i)))
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
        work_bytes: 2 * CHUNK,
        disk_bytes: file,
        expected: Expected::Exact(reference(file, seed)),
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
            value: flush[0] as f64 / tsc_hz * 1e3,
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
    fn reference_of_two_words_by_hand() {
        let h = fold(fold(3, pattern_word(3, 0)), pattern_word(3, 1));
        assert_eq!(reference(16, 3), h);
        assert_eq!(reference(0, 3), 3);
    }
}
