//! `io_rand`: not written yet.
use crate::abi::*;

pub fn run(_cb: &mut ControlBlock) -> u32 {
    STATUS_UNKNOWN_WORKLOAD
}
