//! The exec'd runner of the OCI environments and the pipe protocol between it and the
//! harness. Inside a runtime's container the runner is `isobench __oci-runner` (the isobench
//! binary, bind-mounted read-only): it maps the image, the control page, the record buffer
//! and the working memory at the same fixed addresses as the forked runner and runs the same
//! image bytes. Under gVisor a memfd shared with the host is not shared with the sandbox, so
//! for every runtime the control block, the results and the records travel over the
//! container's stdin and stdout (docs/RUNTIMES.md, "Protocol"):
//!
//! - runner → harness, once: `r` (ready) or `E` and a message until EOF;
//! - harness → runner: `R` + thread 0's control block, then threads 1..n's when its
//!   `threads` is n > 1 (`--threads`) → runner: `D`, then per thread its control block,
//!   records and stamps (as many as its block says, up to the capacities it was sent);
//! - harness → runner: `I` → runner: `I` + the image bytes read at `IMAGE_BASE`;
//! - anything else, or EOF: the runner exits 0.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use isobench_abi::*;

use super::super::process::{self, child_fail, raw_write, ChildConfig, RunnerMemory};
use crate::image;

/// The hidden subcommand that runs the runner: `isobench __oci-runner MODE ...`.
pub const SUBCOMMAND: &str = "__oci-runner";

/// Protocol bytes beyond the forked runner's (`r`, `E`, `D`, `R`).
pub const CMD_IMAGE: u8 = b'I';
/// The probe mode's answer: the runtime started the runner.
pub const PROBE_OK: &[u8] = b"ok\n";

/// The runner's stdin (commands) and stdout (answers).
const CMD_FD: RawFd = 0;
const ANS_FD: RawFd = 1;

/// Bytes of a control block on the pipe.
pub const CONTROL_BYTES: usize = std::mem::size_of::<ControlBlock>();

/// A control block as bytes, for the pipe.
pub fn control_to_bytes(cb: &ControlBlock) -> [u8; CONTROL_BYTES] {
    // SAFETY: ControlBlock is #[repr(C)] and made only of u64/u32/i64 fields and arrays of
    // them in an order that leaves no padding (checked by `control_block_has_no_padding`),
    // so every byte is initialised; the array is exactly its size.
    unsafe { std::mem::transmute_copy(cb) }
}

/// A control block from the pipe's bytes.
pub fn control_from_bytes(b: &[u8; CONTROL_BYTES]) -> ControlBlock {
    // SAFETY: every bit pattern is a valid ControlBlock (integers only, no padding); the
    // source is exactly its size and read unaligned.
    unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<ControlBlock>()) }
}

/// The runner's configuration on its command line (`serve` mode).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServeArgs {
    pub work_size: u64,
    pub disk_size: u64,
    /// The disk file inside the container (on the bind-mounted scratch directory).
    pub disk: Option<String>,
    pub thp: bool,
    pub cpu: Option<usize>,
}

impl ServeArgs {
    /// The arguments after the program: `__oci-runner serve --work-size N ...`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            SUBCOMMAND.to_string(),
            "serve".into(),
            "--work-size".into(),
            self.work_size.to_string(),
            "--disk-size".into(),
            self.disk_size.to_string(),
            "--thp".into(),
            (self.thp as u8).to_string(),
        ];
        if let Some(d) = &self.disk {
            a.extend(["--disk".to_string(), d.clone()]);
        }
        if let Some(c) = self.cpu {
            a.extend(["--cpu".to_string(), c.to_string()]);
        }
        a
    }

    /// Parse what [`ServeArgs::to_args`] wrote (after `serve`).
    pub fn parse(args: &[String]) -> Result<ServeArgs, String> {
        let mut s = ServeArgs::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad {flag} {value}"))
            };
            match flag.as_str() {
                "--work-size" => s.work_size = num()?,
                "--disk-size" => s.disk_size = num()?,
                "--disk" => s.disk = Some(value.clone()),
                "--thp" => s.thp = num()? != 0,
                "--cpu" => s.cpu = Some(num()? as usize),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(s)
    }
}

/// The arguments of a start-up probe: map, enter the image once with `WL_START`, answer.
pub fn start_args(cpu: Option<usize>) -> Vec<String> {
    let mut a = vec![SUBCOMMAND.to_string(), "start".into()];
    if let Some(c) = cpu {
        a.extend(["--cpu".to_string(), c.to_string()]);
    }
    a
}

/// The arguments of an availability probe: start, say `ok`, exit.
pub fn probe_args() -> Vec<String> {
    vec![SUBCOMMAND.to_string(), "probe".into()]
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        let n = raw_write(fd, buf);
        if n <= 0 {
            if n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

fn read_exact_fd(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        got += n as usize;
    }
    true
}

fn pin(cpu: Option<usize>) {
    if let Some(c) = cpu {
        if !super::super::affinity::pin_child(c) {
            child_fail(
                ANS_FD,
                "pinning the runner to its CPU (sched_setaffinity) failed inside the runtime's container: pick a --cpu inside its --cpuset",
            );
        }
    }
}

/// The runner's entry (`isobench __oci-runner MODE ...`), in the container. Never returns.
pub fn runner_main(args: &[String]) -> ! {
    let (mode, rest) = match args.split_first() {
        Some((m, r)) => (m.as_str(), r),
        None => ("", &[][..]),
    };
    match mode {
        "probe" => {
            let ok = write_all(ANS_FD, PROBE_OK);
            std::process::exit(if ok { 0 } else { 1 })
        }
        "start" => {
            let cpu = match ServeArgs::parse(rest) {
                Ok(a) => a.cpu,
                Err(e) => child_fail(ANS_FD, &format!("__oci-runner start: {e}")),
            };
            start_probe(cpu)
        }
        "serve" => match ServeArgs::parse(rest) {
            Ok(a) => serve(&a),
            Err(e) => child_fail(ANS_FD, &format!("__oci-runner serve: {e}")),
        },
        _ => child_fail(
            ANS_FD,
            "__oci-runner is isobench's own runner inside an OCI runtime: it takes probe, start or serve",
        ),
    }
}

fn memory() -> RunnerMemory {
    match RunnerMemory::new() {
        Ok(m) => m,
        Err(_) => child_fail(
            ANS_FD,
            "memfd_create for the runner's control memory failed",
        ),
    }
}

fn start_probe(cpu: Option<usize>) -> ! {
    pin(cpu);
    let mem = memory();
    mem.write_control(&ControlBlock::new(MODE_SYSCALL, WL_START));
    process::child_map_image_and_control(mem.control.raw_fd(), ANS_FD);
    process::child_enter_image();
    let out = mem.read_control();
    let ok = write_all(ANS_FD, &[process::ANS_DONE]) && write_all(ANS_FD, &control_to_bytes(&out));
    std::process::exit(if ok { 0 } else { 1 })
}

fn serve(a: &ServeArgs) -> ! {
    pin(a.cpu);
    let mem = memory();
    let disk = a.disk.as_ref().map(|d| {
        CString::new(d.as_str())
            .unwrap_or_else(|_| child_fail(ANS_FD, "the disk path has a NUL byte"))
    });
    let cfg = ChildConfig {
        control_fd: mem.control.raw_fd(),
        records_fd: mem.records.raw_fd(),
        work_size: a.work_size,
        disk_path: disk.as_deref(),
        disk_size: a.disk_size,
        thp: a.thp,
        cpu: a.cpu,
        cmd_r: CMD_FD,
        done_w: ANS_FD,
    };
    let disk_fd = process::child_prepare(&cfg);
    if !write_all(ANS_FD, &[process::ANS_READY]) {
        std::process::exit(2)
    }
    let mut cb_bytes = [0u8; CONTROL_BYTES];
    loop {
        match process::raw_read_byte(CMD_FD) {
            Some(process::CMD_RUN) => {
                let mut blocks = Vec::new();
                loop {
                    if !read_exact_fd(CMD_FD, &mut cb_bytes) {
                        std::process::exit(3)
                    }
                    let mut cb = control_from_bytes(&cb_bytes);
                    cb.disk_fd = disk_fd;
                    blocks.push(cb);
                    let threads = (blocks[0].threads as u64).clamp(1, MAX_THREADS) as usize;
                    if blocks.len() >= threads {
                        break;
                    }
                }
                // Threads 1.. first: writing thread 0's block resets the threads' barrier.
                for (t, cb) in blocks.iter().enumerate().rev() {
                    mem.write_thread_control(t as u32, cb);
                }
                process::run_invocation();
                let mut msg = vec![process::ANS_DONE];
                for (t, sent) in blocks.iter().enumerate() {
                    let out = mem.read_thread_control(t as u32);
                    msg.extend_from_slice(&control_to_bytes(&out));
                    let (records, stamps) = outputs(&mem, sent, &out);
                    for r in records.iter().chain(&stamps) {
                        msg.extend_from_slice(&r.to_le_bytes());
                    }
                }
                if !write_all(ANS_FD, &msg) {
                    std::process::exit(4)
                }
            }
            Some(CMD_IMAGE) => {
                // SAFETY: the image mapping at IMAGE_BASE holds at least IMAGE.len() bytes
                // (child_prepare copied them there); it is read, not written.
                let loaded = unsafe {
                    std::slice::from_raw_parts(IMAGE_BASE as *const u8, image::IMAGE.len())
                };
                if !(write_all(ANS_FD, &[CMD_IMAGE]) && write_all(ANS_FD, loaded)) {
                    std::process::exit(5)
                }
            }
            _ => std::process::exit(0),
        }
    }
}

/// How many records and stamps a thread sends back: as many as its block says, up to the
/// capacities the harness sent (the image may have written anything into its own block).
pub fn output_counts(sent: &ControlBlock, out: &ControlBlock) -> (u64, u64) {
    let cap = sent.record_capacity.min(RECORD_CAPACITY);
    (out.records.min(cap), out.stamps.min(sent.stamp_capacity))
}

/// A thread's records and stamps, read where its block put them.
fn outputs(mem: &RunnerMemory, sent: &ControlBlock, out: &ControlBlock) -> (Vec<u64>, Vec<u64>) {
    let (n_rec, n_st) = output_counts(sent, out);
    let records = mem.read_records_at(sent.record_addr.saturating_sub(RECORD_ADDR), n_rec);
    let stamps = if n_st > 0 {
        mem.read_records_at(sent.stamp_addr.saturating_sub(RECORD_ADDR), n_st)
    } else {
        Vec::new()
    };
    (records, stamps)
}

/// Harness side: read exactly `buf.len()` bytes from `fd` before `end`. `Err(true)` the
/// deadline passed, `Err(false)` the pipe ended.
pub fn read_exact_until(fd: &OwnedFd, buf: &mut [u8], end: Instant) -> Result<(), bool> {
    let mut got = 0;
    while got < buf.len() {
        match process::wait_readable(fd, end) {
            Err(()) => return Err(true),
            Ok(false) => return Err(false),
            Ok(true) => {}
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => return Err(false),
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(_) => return Err(false),
        }
    }
    Ok(())
}

/// Harness side: everything left on `fd` until EOF or `timeout` (an `E` answer's message).
pub fn read_rest(fd: &OwnedFd, timeout: Duration) -> String {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(true) = process::wait_readable(fd, end) {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_block_has_no_padding() {
        // … + records, hostcalls; then thread, threads (u32) and the six thread words.
        let fields = 8
            + 4 * 4
            + 8
            + 8 * PARAM_COUNT
            + 8 * 6
            + 8 * 2
            + 8 * RESULT_COUNT
            + 8 * 2
            + 4 * 2
            + 8 * 6;
        assert_eq!(CONTROL_BYTES, fields);
        let mut cb = ControlBlock::new(MODE_SYSCALL, WL_CPU_INT);
        cb.results[3] = 0xdead_beef;
        cb.disk_fd = -1;
        assert_eq!(control_from_bytes(&control_to_bytes(&cb)), cb);
    }

    #[test]
    fn serve_args_round_trip() {
        let a = ServeArgs {
            work_size: 1 << 30,
            disk_size: 64 << 20,
            disk: Some("/scratch/disk".into()),
            thp: true,
            cpu: Some(1),
        };
        let args = a.to_args();
        assert_eq!(&args[..2], [SUBCOMMAND, "serve"]);
        assert_eq!(ServeArgs::parse(&args[2..]).unwrap(), a);
        assert!(ServeArgs::parse(&["--bogus".into(), "1".into()]).is_err());
        assert!(ServeArgs::parse(&["--cpu".into()]).is_err());
    }
}
