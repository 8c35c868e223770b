//! `sys.call`: the null hostcall round trip (`HC_NULL`): a syscall natively, a VM exit in
//! the vm.
//!
//! params: [0] calls (N ≥ 1). Timed: N `HC_NULL` hostcalls, back to back. A failing call
//! stops the run (STATUS_HOSTCALL_FAILED). checksum: the number of successful calls, which
//! must equal N. cycles: all N calls.
use super::hostcall_failed;
use crate::abi::*;
use crate::rt;

pub fn run(cb: &mut ControlBlock) -> u32 {
    let calls = cb.params[0];
    if calls == 0 {
        return STATUS_BAD_PARAMS;
    }
    let mut ok = 0u64;
    let t0 = rt::rdtsc();
    for _ in 0..calls {
        let st = rt::hostcall(cb, HC_NULL, [0; 4]);
        if st < 0 {
            return hostcall_failed(cb, st);
        }
        ok += 1;
    }
    cb.cycles = rt::rdtsc() - t0;
    cb.checksum = ok;
    STATUS_OK
}
