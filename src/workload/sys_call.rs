//! `sys.call`: the null hostcall round trip (a syscall natively, a VM exit in the vm); ns.
//!
//! Contract with `image/src/kernels/sys_call.rs`: params [calls]; checksum = successful
//! calls (must equal `calls`); cycles = all calls.

use isobench_abi::WL_SYS_CALL;

use super::{
    check, params, Better, ChecksumMismatch, Expected, Metric, Prepared, Profile, Workload,
};
use crate::image::{Invocation, RawRun};

pub const WORKLOAD: Workload = Workload {
    name: "sys.call",
    id: WL_SYS_CALL,
    description: "null hostcall round trip: getppid natively, a port-IO exit in the vm (quick: 2000, full: 20000 calls) (ns)",
    prepare,
    interpret,
};

/// Calls per invocation. In the vm under kvm_pvm one call is an exit of about 57 µs, so the
/// quick profile keeps this to a few thousand (≈ 0.1 s there).
fn calls(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 2_000,
        Profile::Full => 20_000,
    }
}

/// The reference: every call succeeds.
pub fn reference(calls: u64) -> u64 {
    calls
}

fn prepare(profile: Profile, _seed: u64) -> Prepared {
    let n = calls(profile);
    Prepared {
        invocation: Invocation {
            name: WORKLOAD.name,
            workload: WL_SYS_CALL,
            params: params(&[n]),
            flags: 0,
        },
        work_bytes: 0,
        disk_bytes: 0,
        expected: Expected::Exact(reference(n)),
    }
}

fn interpret(p: &Prepared, raw: &RawRun, tsc_hz: f64) -> Result<Vec<Metric>, ChecksumMismatch> {
    check(WORKLOAD.name, p.expected, raw.checksum)?;
    let n = p.invocation.params[0] as f64;
    Ok(vec![Metric {
        name: "null_hostcall".into(),
        value: raw.cycles as f64 / tsc_hz * 1e9 / n,
        unit: "ns".into(),
        better: Better::Lower,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_counts() {
        assert_eq!(reference(2000), 2000);
        let p = prepare(Profile::Quick, 0);
        assert_eq!(p.expected, Expected::Exact(p.invocation.params[0]));
    }
}
