//! The embedded workload image: its bytes, size, load address and SHA-256, and the shape of
//! one call of it ([`Invocation`] in, [`RawRun`] out) that every environment implements.

use std::collections::BTreeMap;

use isobench_abi::{PARAM_COUNT, RESULT_COUNT};
use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/image_meta.rs"));

/// The flat image, loaded at [`isobench_abi::IMAGE_BASE`].
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/isobench-image.bin"));

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of the embedded image.
pub fn sha256_hex() -> String {
    sha256_hex_of(IMAGE)
}

/// One invocation of the image: which workload with which parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Stable workload name (`cpu.int`), used in errors.
    pub name: &'static str,
    /// `WL_*` id from `isobench-abi`.
    pub workload: u32,
    pub params: [u64; PARAM_COUNT],
    /// `FLAG_*` bits.
    pub flags: u64,
}

/// What one invocation returned, before any interpretation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawRun {
    /// `STATUS_*` left by the image (the environment has already turned a non-OK status into
    /// an error, so this is `STATUS_OK` in every `RawRun` handed out).
    pub status: u32,
    pub checksum: u64,
    /// TSC cycles of the timed region, measured inside the image.
    pub cycles: u64,
    pub results: [u64; RESULT_COUNT],
    /// The records the image wrote (per-op latencies, per-size results).
    pub records: Vec<u64>,
    pub hostcalls: u64,
    /// Host wall-clock time around the whole invocation, a cross-check for `cycles`.
    pub wall_ns: u64,
    /// Environment-specific accounting (VM exits by reason, cgroup CPU time, ...), stored as
    /// `counter.<name>` rows with the samples.
    pub counters: BTreeMap<String, u64>,
    /// One entry per thread when the invocation ran on several threads (`--threads`); then
    /// `checksum` and `results` are thread 0's, and `records` and `cycles` the threads' joint
    /// repetitions (first start to last end). Empty for one thread.
    pub threads: Vec<ThreadRun>,
}

/// What one thread of a multi-threaded invocation returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadRun {
    pub checksum: u64,
    pub results: [u64; RESULT_COUNT],
    /// The image's proof that it ran on this thread: the thread's index + 1.
    pub ran: u64,
    /// The host CPU the thread (native, container) or the vCPU's `KVM_RUN` thread (vm) ran on.
    pub host_cpu: Option<usize>,
    /// The thread's own cycles per repetition (its records).
    pub records: Vec<u64>,
    /// Per repetition, the thread's TSC as it left the barrier before and after it.
    pub stamps: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_abi::*;

    #[test]
    fn image_fits_its_slot_and_hashes() {
        assert!(!IMAGE.is_empty());
        assert!(IMAGE.len() as u64 <= IMAGE_MEM_SIZE);
        const {
            assert!(
                IMAGE_BASE + IMAGE_MEM_SIZE <= CONTROL_ADDR,
                "image overlaps the control block"
            )
        };
        assert_eq!(sha256_hex().len(), 64);
        assert_eq!(
            sha256_hex_of(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn layout_is_ordered() {
        let regions = [
            (IMAGE_BASE, IMAGE_BASE + IMAGE_MAX_SIZE),
            (CONTROL_ADDR, CONTROL_ADDR + 4096),
            (HOSTCALL_ADDR, HOSTCALL_ADDR + 4096),
            (STACK_BASE, STACK_TOP),
            (RECORD_ADDR, RECORD_ADDR + RECORD_SIZE),
            (PAGE_TABLE_BASE, LOW_END),
        ];
        for w in regions.windows(2) {
            assert!(w[0].1 <= w[1].0, "{:#x?} overlaps {:#x?}", w[0], w[1]);
        }
        const { assert!(LOW_END <= WORK_BASE) };
    }

    #[test]
    fn control_block_layout_is_pinned() {
        // The image and the harness share this struct; its layout is the ABI.
        use std::mem::{offset_of, size_of};
        assert_eq!(offset_of!(ControlBlock, magic), 0);
        assert_eq!(offset_of!(ControlBlock, abi_version), 8);
        assert_eq!(offset_of!(ControlBlock, mode), 12);
        assert_eq!(offset_of!(ControlBlock, workload), 16);
        assert_eq!(offset_of!(ControlBlock, status), 20);
        assert_eq!(offset_of!(ControlBlock, flags), 24);
        assert_eq!(offset_of!(ControlBlock, params), 32);
        assert_eq!(offset_of!(ControlBlock, work_addr), 96);
        assert_eq!(offset_of!(ControlBlock, disk_fd), 128);
        assert_eq!(offset_of!(ControlBlock, checksum), 144);
        assert_eq!(offset_of!(ControlBlock, results), 160);
        assert_eq!(offset_of!(ControlBlock, records), 288);
        assert_eq!(offset_of!(ControlBlock, hostcalls), 296);
        assert_eq!(offset_of!(ControlBlock, thread), 304);
        assert_eq!(offset_of!(ControlBlock, threads), 308);
        assert_eq!(offset_of!(ControlBlock, sync_addr), 312);
        assert_eq!(offset_of!(ControlBlock, stamp_addr), 320);
        assert_eq!(offset_of!(ControlBlock, stamp_capacity), 328);
        assert_eq!(offset_of!(ControlBlock, ran), 336);
        assert_eq!(offset_of!(ControlBlock, stamps), 344);
        assert_eq!(offset_of!(ControlBlock, host_cpu), 352);
        assert_eq!(size_of::<ControlBlock>(), 360);
        assert_eq!(size_of::<SyncBlock>(), 24);
        const {
            assert!(size_of::<ControlBlock>() as u64 <= HOSTCALL_OFFSET);
            assert!(CONTROL_END <= STACK_BASE);
        }
        assert_eq!(size_of::<HostcallRequest>(), HOSTCALL_REQUEST_SIZE);
        assert_eq!(offset_of!(HostcallRequest, op), 2);
        assert_eq!(offset_of!(HostcallRequest, args), 8);
        assert_eq!(offset_of!(HostcallRequest, status), 40);
        // Pinned too: a change of any layout or param meaning above must bump it.
        assert_eq!(ABI_VERSION, 5);
    }
}
