//! `mem.touch`: first touch of memory (page faults included), reported apart from the
//! steady state of the same pages (docs/METHODOLOGY.md, "First touch and steady state").
//!
//! Contract with `image/src/kernels/mem_touch.rs`: params [bytes, seed]; `HC_DISCARD` of the
//! region (untimed), then one word written per 4 KiB page (timed: first touch), then that
//! word rotated left by one in every page (timed: steady). records = [first, steady] cycles;
//! checksum = fold over the pages' first words, which the reference reproduces.
//!
//! One long operation per invocation (a first touch happens once per discard), so it is not
//! repeated and the span does not change it (docs/METHODOLOGY.md, "Repetitions and the
//! per-sample value"). The primary metric is `first_touch` (ns per page): the cost this
//! workload exists to show, the page fault plus, in a guest, the second-level page-table
//! fill; `steady_touch` is its control and `first_touch_bw` the same time as a rate.

use isobench_abi::WL_MEM_TOUCH;

use super::gen::{fold, pattern_word};
use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Sizing, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "mem.touch",
    id: WL_MEM_TOUCH,
    description: "first touch of discarded memory, one write per 4 KiB page, vs the same pages warm (quick: 32 MiB, full: 256 MiB) (ns/page)",
    prepare,
    interpret,
    primary: |_| "first_touch".into(),
    repeated: false,
};

const PAGE: u64 = 4096;

fn region_bytes(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 32 << 20,
        Profile::Full => 256 << 20,
    }
}

/// The reference checksum: every page's word after both passes.
pub fn reference(bytes: u64, seed: u64) -> u64 {
    (0..bytes / PAGE).fold(0, |h, p| fold(h, pattern_word(seed, p).rotate_left(1)))
}

fn prepare(sizing: Sizing, seed: u64) -> Prepared {
    let bytes = region_bytes(sizing.profile);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_MEM_TOUCH,
            params: params(&[bytes, seed]),
            flags: 0,
        },
        work_bytes: bytes,
        disk_bytes: 0,
        expected: Expected::Exact(reference(bytes, seed)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [first, steady] = raw.records[..] else {
        return Err(ChecksumMismatch {
            workload: WORKLOAD.name.into(),
            got: format!("{} records", raw.records.len()),
            expected: "2 (first-touch and steady cycles)".into(),
        });
    };
    let bytes = p.invocation.params[0];
    let pages = (bytes / PAGE) as f64;
    let ns = |c: u64| c as f64 / tsc_hz * 1e9;
    Ok(vec![
        Metric {
            name: "first_touch".into(),
            value: ns(first) / pages,
            unit: "ns_per_page".into(),
            better: Better::Lower,
        },
        Metric {
            name: "first_touch_bw".into(),
            value: bytes as f64 / (ns(first) / 1e9) / 1e6,
            unit: "MB/s".into(),
            better: Better::Higher,
        },
        Metric {
            name: "steady_touch".into(),
            value: ns(steady) / pages,
            unit: "ns_per_page".into(),
            better: Better::Lower,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_of_one_and_two_pages_by_hand() {
        let w0 = pattern_word(5, 0).rotate_left(1);
        let w1 = pattern_word(5, 1).rotate_left(1);
        assert_eq!(reference(PAGE, 5), fold(0, w0));
        assert_eq!(reference(2 * PAGE, 5), fold(fold(0, w0), w1));
        assert_eq!(reference(0, 5), 0);
    }
}
