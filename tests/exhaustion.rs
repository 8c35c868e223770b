//! Resource exhaustion (docs/RELIABILITY.md): a scratch filesystem that fills up during
//! `io.seq` in every environment is a clear error naming the cause and the workload, never a
//! hang, and leaves nothing behind; guest memory that cannot be allocated is a clear error at
//! start. (The container's memory limit and the runaway vCPU have their own tests:
//! `env::container::tests::a_memory_limit_kill_is_a_clear_error_and_the_harness_goes_on`
//! and `tests/vm.rs` `a_runaway_guest_is_stopped_at_its_deadline`.)

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use isobench::env::{vm::Vm, Environment, InstanceSpec};
use isobench::plan::VmOptions;
use isobench::scratch::OWNER_FILE;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A tmpfs mounted for one test, unmounted (lazily) however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        mount(
            Some("isobench-test-tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={size}").as_str()),
        )
        .unwrap_or_else(|e| panic!("mounting a tmpfs at {} (needs root): {e}", at.display()));
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// Free bytes on the filesystem at `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks_available() * s.fragment_size()
}

/// Allocate a file `name` in `dir` so that `leave` bytes stay free (fallocate: fast on tmpfs).
fn fill_leaving(dir: &Path, name: &str, leave: u64) -> u64 {
    let len = free_bytes(dir).saturating_sub(leave) & !0xfff;
    let f = std::fs::File::create(dir.join(name)).unwrap();
    if len > 0 {
        // SAFETY: fallocate on a file this test just created.
        let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
        assert_eq!(r, 0, "fallocate of {len} bytes in {}", dir.display());
    }
    len
}

/// Fill the filesystem at `dir` completely, while a run is using it: allocate most of the free
/// space at once (retrying smaller when the run took some meanwhile), then write the rest
/// until ENOSPC.
fn fill_all(dir: &Path) -> u64 {
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let mut total = 0u64;
    for _ in 0..20 {
        let len = free_bytes(dir).saturating_sub(1 << 20) & !0xfff;
        if len == 0 {
            break;
        }
        // SAFETY: fallocate on a file this test just created, after what it holds.
        let r =
            unsafe { libc::fallocate(f.as_raw_fd(), 0, total as libc::off_t, len as libc::off_t) };
        if r == 0 {
            total += len;
            break;
        }
    }
    f.seek(SeekFrom::Start(total)).unwrap();
    let page = [0x5au8; 4096];
    loop {
        match f.write(&page) {
            Ok(n) if n > 0 => total += n as u64,
            _ => return total,
        }
    }
}

fn isobench_io_run(scratch: &Path, out: &Path) -> Command {
    let mut c = Command::cargo_bin("isobench").unwrap();
    c.args([
        "run",
        "--env",
        "native,container,vm",
        "--strict",
        "--workload",
        "io.seq",
        "--rounds",
        "20",
        "--warmup",
        "0",
        "--deadline",
        "30",
    ])
    .arg("--scratch")
    .arg(scratch)
    .arg("--out")
    .arg(out)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

#[test]
fn a_scratch_filesystem_that_fills_up_during_io_is_a_clear_error_and_no_hang() {
    let top = tempfile::tempdir().unwrap();
    let scratch = top.path().join("scratch");
    let out = top.path().join("out");
    let _fs = Tmpfs::mount(&scratch, "1g");
    // Too little space from the start: refused before anything runs, naming what it needs.
    fill_leaving(&scratch, "ballast", 4 << 20);
    let early = isobench_io_run(&scratch, &out).output().unwrap();
    let said = String::from_utf8_lossy(&early.stderr).into_owned();
    println!("exhaustion: with 4 MiB free isobench said: {said}");
    assert_eq!(early.status.code(), Some(1), "{said}");
    let needed_mib: u64 = said
        .split("the run needs about ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the up-front check names the space needed: {said}"));
    assert!(said.contains("--scratch"), "the fix is named: {said}");
    std::fs::remove_file(scratch.join("ballast")).unwrap();
    // Just enough to pass the check; once the first environment has put its disk file in the
    // run's scratch directory (after the check), take the rest, so the disk writes of
    // `io.seq` (after every environment has started) find the filesystem full.
    fill_leaving(&scratch, "ballast", (needed_mib + 1) << 20);
    let mut child = isobench_io_run(&scratch, &out).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        let started = std::fs::read_dir(&scratch)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name() != "ballast")
                    .filter_map(|e| std::fs::read_dir(e.path()).ok())
                    .any(|mut d| d.any(|f| f.is_ok_and(|f| f.file_name() != OWNER_FILE)))
            })
            .unwrap_or(false);
        if started {
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never created its scratch directory");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let filled = fill_all(&scratch);
    let t1 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t1.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run hung on a full scratch filesystem");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    println!(
        "exhaustion: needed {needed_mib} MiB, filled the last {} MiB after start; isobench said: {stderr}",
        filled >> 20
    );
    assert_eq!(status.code(), Some(1), "a failed run exits 1: {stderr}");
    assert!(stderr.contains("io.seq"), "the workload is named: {stderr}");
    assert!(
        stderr.contains("ENOSPC") || stderr.contains("full"),
        "the cause is named: {stderr}"
    );
    assert!(stderr.contains("scratch"), "the fix is named: {stderr}");
    // Nothing of the run is left in the scratch filesystem but the two fillers.
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "ballast" && n != "filler")
        .collect();
    assert!(left.is_empty(), "left in scratch: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("isobench-{}-", child.id())),
        "a container mount was left"
    );
}

#[test]
fn guest_memory_that_cannot_be_allocated_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = Vm::new("vm", VmOptions::default());
    // 64 TiB: beyond what this host can map for a guest.
    let spec = |work_size| InstanceSpec {
        work_size,
        disk_size: 0,
        scratch: dir.path().to_path_buf(),
        deadline: Duration::from_secs(30),
        thp: true,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    };
    let e = vm
        .start(&spec(64 << 40))
        .expect_err("64 TiB of guest memory cannot be allocated here");
    let msg = format!("{e:#}");
    println!("exhaustion: {msg}");
    assert!(msg.contains("memory"), "the cause is named: {msg}");
    assert!(
        msg.contains("lower") || msg.contains("less") || msg.contains("free"),
        "the fix is named: {msg}"
    );
    // The environment is usable afterwards with a size that fits.
    vm.start(&spec(2 << 20)).expect("a small guest starts");
    vm.stop().unwrap();
}
