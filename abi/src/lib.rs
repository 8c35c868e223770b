//! The entry ABI shared by the harness and the freestanding workload image: memory layout,
//! the control block, workload ids and the hostcall request format.
//!
//! This file is compiled twice: as the `isobench-abi` crate for the harness, and textually
//! included (`#[path]`) into the image. It must stay `no_std`, dependency-free, and only
//! contain plain data and constants. A layout test in the harness pins every offset.
#![no_std]

/// Bumped whenever any struct or constant in this file changes meaning, or the meaning of a
/// workload's `params` changes. 2: per-repetition records (`cpu.int` params[1] is passes per
/// repetition, `sys.call` params[0] calls per repetition; new repetition-count params).
/// 3: ISA tiers (`FLAG_ISA_*`, `STATUS_ISA_UNAVAILABLE`, `RESULT_ISA`); `io.seq`'s
/// checksum folds four lanes per chunk; IO phases are elapsed spans.
/// 4: threads (`ControlBlock::thread`..`ran`, per-thread control pages, the barrier page);
/// a hostcall's request sits one page above its control block.
/// 5: `HC_DISK_DROP_CACHE` takes `[offset, length]`; `io.rand` params[5] places its file on
/// the disk; the IO data is a base block xor a per-block stamp.
pub const ABI_VERSION: u32 = 5;

/// `ControlBlock::magic`: "ISOBENCH" in little-endian ASCII.
pub const CONTROL_MAGIC: u64 = u64::from_le_bytes(*b"ISOBENCH");

// ---------------------------------------------------------------------------------------
// Memory layout. The same virtual addresses are used natively (fixed mappings in the
// runner process) and in the guest (identity-mapped guest-physical memory).
//
//   0x0000_0000 .. 0x0040_0000   reserved: never mapped natively; VMM tables in the guest
//   0x0040_0000 .. 0x0080_0000   the image (text, rodata, data, bss)
//   0x0080_0000 .. 0x0080_1000   the control block
//   0x0080_1000 .. 0x0080_2000   the hostcall request
//   0x0080_2000 .. 0x0082_0000   threads 1..15: a control page and a hostcall page each
//   0x0082_0000 .. 0x0082_1000   the threads' barrier (`SyncBlock`)
//   0x0090_0000 .. 0x00a0_0000   the guest stack, 64 KiB per vCPU from the top (the native
//                                runner's threads use their own stacks)
//   0x0100_0000 .. 0x0200_0000   the record buffer (per-op latencies, per-size results)
//   0x0200_0000 .. 0x0400_0000   reserved: guest page tables
//   0x4000_0000 .. +work size    working memory
// ---------------------------------------------------------------------------------------

/// Where the image is linked and loaded.
pub const IMAGE_BASE: u64 = 0x0040_0000;
/// Largest image (including bss) the layout leaves room for.
pub const IMAGE_MAX_SIZE: u64 = 0x0040_0000;
/// Address of the [`ControlBlock`].
pub const CONTROL_ADDR: u64 = 0x0080_0000;
/// Address of the [`HostcallRequest`] the image fills before a hostcall.
pub const HOSTCALL_ADDR: u64 = 0x0080_1000;
/// Lowest address of the guest stack.
pub const STACK_BASE: u64 = 0x0090_0000;
/// One past the highest address of the guest stack.
pub const STACK_TOP: u64 = 0x00a0_0000;
/// Address of the record buffer (array of `u64`).
pub const RECORD_ADDR: u64 = 0x0100_0000;
/// Size of the record buffer in bytes.
pub const RECORD_SIZE: u64 = 0x0100_0000;
/// Number of `u64` records that fit in the record buffer.
pub const RECORD_CAPACITY: u64 = RECORD_SIZE / 8;
/// Start of the region the VMM may use for guest page tables.
pub const PAGE_TABLE_BASE: u64 = 0x0200_0000;
/// End of the low region: everything below is "low memory" (guest memslot 0).
pub const LOW_END: u64 = 0x0400_0000;
/// Where the working memory starts.
pub const WORK_BASE: u64 = 0x4000_0000;
/// Largest working memory the layout supports (64 GiB).
pub const WORK_MAX_SIZE: u64 = 64 << 30;

// ---------------------------------------------------------------------------------------
// Threads (`--threads N`). Thread t has its own control block at `thread_control_addr(t)`,
// its hostcall request one page above it (thread 0: `CONTROL_ADDR`, `HOSTCALL_ADDR`), its own
// slice of the record buffer and of the working memory, and (vm) its own stack slice. The
// threads of one invocation meet at a barrier in the sync page before every timed repetition
// and stamp the TSC as they leave each barrier, so that the harness times each repetition
// from the first thread's start to the last thread's end, each span on one CPU's clock.
// ---------------------------------------------------------------------------------------

/// Most threads (native runner threads, or vm vCPUs) one invocation may run on.
pub const MAX_THREADS: u64 = 16;
/// Distance between two threads' control blocks: a control page and a hostcall page.
pub const THREAD_CONTROL_STRIDE: u64 = 0x2000;
/// Offset of a thread's hostcall request from its control block.
pub const HOSTCALL_OFFSET: u64 = HOSTCALL_ADDR - CONTROL_ADDR;
/// The page holding the threads' barrier (`SyncBlock`), after the last thread's pages.
pub const SYNC_ADDR: u64 = CONTROL_ADDR + MAX_THREADS * THREAD_CONTROL_STRIDE;
/// One past the control region (control and hostcall pages of every thread, the sync page).
pub const CONTROL_END: u64 = SYNC_ADDR + 0x1000;
/// The guest stack slice of each vCPU (thread t's stack top is `STACK_TOP - t * this`).
pub const THREAD_STACK_SIZE: u64 = (STACK_TOP - STACK_BASE) / MAX_THREADS;
/// Bytes of the record buffer each thread gets when an invocation runs on several threads:
/// the first half its records, the second half its stamps.
pub const THREAD_RECORD_SIZE: u64 = RECORD_SIZE / MAX_THREADS;

/// Address of thread `t`'s control block.
pub const fn thread_control_addr(t: u64) -> u64 {
    CONTROL_ADDR + t * THREAD_CONTROL_STRIDE
}

/// The barrier the threads of one invocation meet at: `arrived` counts the threads at the
/// current barrier, `generation` counts the barriers passed. Reset to zero before each
/// invocation by the harness.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncBlock {
    pub arrived: u64,
    pub generation: u64,
    /// Set by the VMM when a vCPU of the invocation failed: the barrier stops waiting, so
    /// the other vCPUs finish instead of spinning until their deadline.
    pub abort: u64,
}

/// I/O port the image writes the hostcall request address to in vm mode.
pub const HOSTCALL_PORT: u16 = 0x0510;

// ---------------------------------------------------------------------------------------
// Modes: how a hostcall leaves the image.
// ---------------------------------------------------------------------------------------

/// Native and container: a hostcall is a raw Linux `syscall`.
pub const MODE_SYSCALL: u32 = 1;
/// vm: a hostcall is `out HOSTCALL_PORT, eax` with eax = address of the request.
pub const MODE_PORTIO: u32 = 2;

// ---------------------------------------------------------------------------------------
// Workload ids. Stable numbers; names live in the harness (`workload.rs`).
// ---------------------------------------------------------------------------------------

pub const WL_CPU_INT: u32 = 1;
pub const WL_CPU_FP: u32 = 2;
pub const WL_MEM_STREAM: u32 = 3;
pub const WL_MEM_RANDOM: u32 = 4;
pub const WL_MEM_LATENCY: u32 = 5;
pub const WL_IO_SEQ: u32 = 6;
pub const WL_IO_RAND: u32 = 7;
pub const WL_SYS_CALL: u32 = 8;
/// Discard the working memory, then time the first touch of every page.
pub const WL_MEM_TOUCH: u32 = 9;
/// Record the TSC at the first instruction (`results[0]`) and return: the `start` metric.
pub const WL_START: u32 = 10;
/// Test only: touch an unmapped address (a fault).
pub const WL_TEST_FAULT: u32 = 100;
/// Test only: spin forever (a runaway guest).
pub const WL_TEST_SPIN: u32 = 101;
/// Test only: issue one hostcall whose request is taken verbatim from `params`
/// (`params[0]` = op, `params[1..5]` = args), result in `results[0]`.
pub const WL_TEST_HOSTCALL: u32 = 102;

/// `ControlBlock::flags` bit: flip the checksum's lowest bit (tests the harness's check).
pub const FLAG_CORRUPT_CHECKSUM: u64 = 1 << 0;
/// `ControlBlock::flags` bit, tests only: on several threads, the last thread faults right
/// after the first barrier (tests that one failed thread fails the invocation promptly).
pub const FLAG_TEST_FAULT_LAST_THREAD: u64 = 1 << 2;

// ---------------------------------------------------------------------------------------
// ISA tiers. The image carries a kernel per tier for the workloads where vector width
// matters (`cpu.fp`, `mem.stream`); the harness asks for one tier in `flags`, the image
// checks with CPUID (and XCR0 via `xgetbv`) that this environment can run it, runs that
// kernel, and writes the tier it ran to `results[RESULT_ISA]`. Without a request the image
// runs `ISA_SSE2`.
// ---------------------------------------------------------------------------------------

/// Bits 8..=11 of `ControlBlock::flags`: the requested ISA tier (`ISA_*`).
pub const FLAG_ISA_SHIFT: u32 = 8;
pub const FLAG_ISA_MASK: u64 = 0xf << FLAG_ISA_SHIFT;
/// SSE2 (every x86-64 CPU).
pub const ISA_SSE2: u64 = 0;
/// AVX2 and FMA (CPUID.7.0:EBX.AVX2, CPUID.1:ECX.FMA/AVX/OSXSAVE; XCR0 SSE and AVX state).
pub const ISA_AVX2: u64 = 1;
/// AVX-512 Foundation on top of AVX2+FMA (CPUID.7.0:EBX.AVX512F; XCR0 opmask, ZMM state).
pub const ISA_AVX512: u64 = 2;
/// Result word a tiered kernel leaves its tier in, as `ISA_* + 1` (0: not a tiered kernel).
pub const RESULT_ISA: usize = 14;
/// Flip the non-temporal copy on for `mem.stream` (STREAM's copy as glibc's `memcpy` does
/// it above its threshold: streaming stores that bypass the cache).
pub const FLAG_STREAM_NT_COPY: u64 = 1 << 1;

// ---------------------------------------------------------------------------------------
// Status codes the image leaves in `ControlBlock::status`.
// ---------------------------------------------------------------------------------------

pub const STATUS_RUNNING: u32 = 0xffff_ffff;
pub const STATUS_OK: u32 = 0;
pub const STATUS_BAD_MAGIC: u32 = 1;
pub const STATUS_BAD_VERSION: u32 = 2;
pub const STATUS_UNKNOWN_WORKLOAD: u32 = 3;
pub const STATUS_BAD_PARAMS: u32 = 4;
/// A hostcall returned an error; `results[15]` holds the negative errno / status.
pub const STATUS_HOSTCALL_FAILED: u32 = 5;
/// The requested ISA tier cannot run here: CPUID lacks a feature or XCR0 lacks its state.
pub const STATUS_ISA_UNAVAILABLE: u32 = 6;
/// `threads > 1` for a workload that runs on one thread only, or a thread index out of range.
pub const STATUS_SINGLE_THREADED: u32 = 7;

/// Number of workload parameters.
pub const PARAM_COUNT: usize = 8;
/// Number of result words.
pub const RESULT_COUNT: usize = 16;

/// The control block: the only interface between the harness and one image invocation.
///
/// The harness fills the inputs, enters the image at `IMAGE_BASE` with the address of this
/// block in `rdi` (System V), and reads the outputs when the image returns (native) or
/// signals `HC_DONE` (vm). Meaning of `params`/`results` is per workload (`workload.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlBlock {
    // -- inputs --
    pub magic: u64,
    pub abi_version: u32,
    /// `MODE_SYSCALL` or `MODE_PORTIO`.
    pub mode: u32,
    pub workload: u32,
    /// Written by the image: `STATUS_*`. The harness sets `STATUS_RUNNING` before entry.
    pub status: u32,
    /// `FLAG_*` bits.
    pub flags: u64,
    pub params: [u64; PARAM_COUNT],
    pub work_addr: u64,
    pub work_size: u64,
    pub record_addr: u64,
    pub record_capacity: u64,
    /// Native/container: the fd of the scratch disk file. vm: unused (the VMM owns the disk).
    pub disk_fd: i64,
    /// Usable size of the disk in bytes.
    pub disk_size: u64,
    // -- outputs --
    pub checksum: u64,
    /// Cycles (TSC) of the timed region.
    pub cycles: u64,
    pub results: [u64; RESULT_COUNT],
    /// Number of `u64` records written to the record buffer.
    pub records: u64,
    /// Number of hostcalls the invocation issued.
    pub hostcalls: u64,
    // -- threads (inputs) --
    /// This thread's index, 0-based.
    pub thread: u32,
    /// Threads running this invocation (0 or 1: one, no barrier, no stamps).
    pub threads: u32,
    /// Address of the [`SyncBlock`] every thread of the invocation shares.
    pub sync_addr: u64,
    /// Address of this thread's stamps: two `u64` per repetition, the TSC when this thread
    /// left the barrier before it and when it left the barrier after it (every thread done).
    pub stamp_addr: u64,
    /// Number of `u64` stamps that fit at `stamp_addr`.
    pub stamp_capacity: u64,
    // -- threads (outputs) --
    /// Written by the image at entry: `thread + 1` (proof that this thread ran the image).
    pub ran: u64,
    /// Number of stamps written.
    pub stamps: u64,
    /// Written by the harness's thread that entered the image: the host CPU it ran on.
    pub host_cpu: u64,
}

impl ControlBlock {
    /// A block for `workload` in `mode` with every other field zero.
    pub const fn new(mode: u32, workload: u32) -> Self {
        ControlBlock {
            magic: CONTROL_MAGIC,
            abi_version: ABI_VERSION,
            mode,
            workload,
            status: STATUS_RUNNING,
            flags: 0,
            params: [0; PARAM_COUNT],
            work_addr: WORK_BASE,
            work_size: 0,
            record_addr: RECORD_ADDR,
            record_capacity: RECORD_CAPACITY,
            disk_fd: -1,
            disk_size: 0,
            checksum: 0,
            cycles: 0,
            results: [0; RESULT_COUNT],
            records: 0,
            hostcalls: 0,
            thread: 0,
            threads: 1,
            sync_addr: SYNC_ADDR,
            stamp_addr: 0,
            stamp_capacity: 0,
            ran: 0,
            stamps: 0,
            host_cpu: u64::MAX,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostcalls.
// ---------------------------------------------------------------------------------------

/// Version of the hostcall request format.
pub const HOSTCALL_VERSION: u16 = 1;

/// No operation: the round trip itself (`sys.call`). Native: `getppid`.
pub const HC_NULL: u16 = 0;
/// `args = [disk offset, buffer address, length, 0]`: read from the disk. Native: `pread64`.
pub const HC_DISK_READ: u16 = 1;
/// `args = [disk offset, buffer address, length, 0]`: write to the disk. Native: `pwrite64`.
pub const HC_DISK_WRITE: u16 = 2;
/// Make the disk's written data durable. Native: `fsync`.
pub const HC_DISK_FLUSH: u16 = 3;
/// `args = [offset, length, 0, 0]`: drop that range of the disk (length 0: to its end) from
/// the host page cache, so a workload drops only its own file's pages. Native:
/// `posix_fadvise(DONTNEED)`. Inside the disk.
pub const HC_DISK_DROP_CACHE: u16 = 4;
/// `args = [address, length, 0, 0]`: give working memory back to the host, so that the next
/// touch is a first touch. Native: `madvise(MADV_DONTNEED)`. Page-aligned, inside work memory.
pub const HC_DISCARD: u16 = 5;
/// vm only: the invocation is finished; the VMM stops the vCPU.
pub const HC_DONE: u16 = 6;
/// One past the highest op code.
pub const HC_OP_COUNT: u16 = 7;

/// A hostcall request, written by the image at `HOSTCALL_ADDR` before the call.
///
/// `status` is written by the host: `>= 0` success (bytes transferred for IO), `< 0` a
/// negative errno (native) or a negative `HC_ERR_*` (vm validation failure).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostcallRequest {
    pub version: u16,
    pub op: u16,
    pub reserved: u32,
    pub args: [u64; 4],
    pub status: i64,
}

/// Size of [`HostcallRequest`] in bytes.
pub const HOSTCALL_REQUEST_SIZE: usize = 48;

/// vm validation failures, negated into `HostcallRequest::status`.
pub const HC_ERR_VERSION: i64 = 1001;
pub const HC_ERR_OP: i64 = 1002;
pub const HC_ERR_ADDRESS: i64 = 1003;
pub const HC_ERR_OFFSET: i64 = 1004;
pub const HC_ERR_IO: i64 = 1005;

/// Size of a disk block used by the IO workloads.
pub const DISK_BLOCK: u64 = 4096;
