//! `sys.call`: the null hostcall round trip (`HC_NULL`): a syscall natively, a VM exit in
//! the vm.
//!
//! params: [0] calls per repetition (≥ 1), [1] repetitions (1 ..= record_capacity). Timed:
//! `reps` repetitions of `calls` `HC_NULL` hostcalls, back to back. A failing call stops the
//! run (STATUS_HOSTCALL_FAILED). records: the cycles of each repetition, in order.
//! checksum: the number of successful calls, which must equal calls × reps. cycles: the
//! whole timed region, which is the sum of the records.
use super::{hostcall_failed, Laps};
use crate::abi::*;
use crate::rt;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let [calls, reps, ..] = cb.params;
    if calls == 0 || reps == 0 || reps > cb.record_capacity {
        return STATUS_BAD_PARAMS;
    }
    let rec = rt::records(cb);
    let mut ok = 0u64;
    let mut laps = Laps::start();
    for slot in rec.iter_mut().take(reps as usize) {
        for _ in 0..calls {
            let st = rt::hostcall(cb, HC_NULL, [0; 4]);
            if st < 0 {
                return hostcall_failed(cb, st);
            }
            ok += 1;
        }
        *slot = laps.lap();
    }
    cb.cycles = laps.total();
    cb.records = reps;
    cb.checksum = ok;
    STATUS_OK
}
