//! `sys.call`: the null hostcall round trip (a syscall natively, a VM exit in the vm); ns.
//!
//! Contract with `image/src/kernels/sys_call.rs`: params [calls per repetition,
//! repetitions]; checksum = successful calls (must equal calls × repetitions); records =
//! cycles per repetition; cycles = their sum.
//!
//! Repetitions (docs/METHODOLOGY.md, "Repetitions and the per-sample value"): 256 calls,
//! about 33 µs natively and 7–15 ms in a kvm_pvm guest, where every call is a port-IO
//! exit (docs/ARCHITECTURE.md, "The machines this is developed on"); 16 of them with
//! `Span::Short`, 128 with `Span::CfsSafe`, in both profiles. (1024 calls made a block of
//! the vm cost half a second, the most expensive block of the catalogue for the least
//! noisy metric.) The sizes are set by the vm,
//! not by native: the same calls run in every environment, and at 200–400× native's cost per
//! call a `Span::CfsSafe` invocation of 350 ms natively would run 70–150 s in the guest, near
//! or past the default deadline. So `sys.call` is the one repeated workload whose long span
//! stays short natively (about 5 ms; 1–2 s in the vm), and a container CPU quota is not
//! guaranteed to be felt by it. Metrics: `null_hostcall` (ns per call in the median
//! repetition, the primary metric) and `null_hostcall.mean` (all cycles over all calls).

use isobench_abi::WL_SYS_CALL;

use super::{
    check, check_records, params, repeated, Better, ChecksumMismatch, Expected, Metric, Prepared,
    Sizing, Span, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "sys.call",
    id: WL_SYS_CALL,
    description: "null hostcall round trip: getppid natively, a port-IO exit in the vm, 256 calls per repetition (ns)",
    prepare,
    interpret,
    primary: |_| "null_hostcall".into(),
    repeated: true,
};

/// Calls per repetition.
const CALLS_PER_REP: u64 = 256;

/// Repetitions per invocation.
fn reps(span: Span) -> u64 {
    match span {
        Span::Short => 16,
        Span::CfsSafe => 128,
    }
}

/// The reference: every call succeeds.
pub fn reference(calls: u64) -> u64 {
    calls
}

fn prepare(sizing: Sizing, _seed: u64) -> Prepared {
    let reps = reps(sizing.span);
    Prepared {
        span: sizing.span,
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_SYS_CALL,
            params: params(&[CALLS_PER_REP, reps]),
            flags: 0,
        },
        work_bytes: 0,
        disk_bytes: 0,
        expected: Expected::Exact(reference(CALLS_PER_REP * reps)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let [calls, reps, ..] = p.invocation.params;
    check_records(WORKLOAD.name, raw, reps, "one per repetition")?;
    Ok(repeated(
        p.span,
        "null_hostcall",
        "ns",
        Better::Lower,
        &raw.records,
        |c| c / tsc_hz * 1e9 / calls as f64,
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::super::{synthetic_run, Profile};
    use super::*;

    fn short() -> Prepared {
        prepare(
            Sizing {
                profile: Profile::Quick,
                span: Span::Short,
            },
            0,
        )
    }

    #[test]
    fn every_call_counts() {
        assert_eq!(reference(2000), 2000);
        let p = short();
        let [calls, reps, ..] = p.invocation.params;
        assert_eq!(p.expected, Expected::Exact(calls * reps));
    }

    #[test]
    fn median_ignores_an_outlier_the_mean_does_not() {
        let p = short();
        let [calls, reps, ..] = p.invocation.params;
        // 1 GHz: 100 ns per call, but one repetition took an extra 1 ms (a preemption).
        let mut records = vec![100 * calls; reps as usize];
        records[1] += 1_000_000;
        let m = interpret(&p, &synthetic_run(&p, records), 1e9).expect("interprets");
        assert_eq!(m[0].name, "null_hostcall");
        assert!((m[0].value - 100.0).abs() < 1e-9, "{m:?}");
        assert_eq!(m[1].name, "null_hostcall.mean");
        let mean = 100.0 + 1e6 / (calls * reps) as f64;
        assert!((m[1].value - mean).abs() < 1e-9, "{m:?}");
    }
}
