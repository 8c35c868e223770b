//! Claim 3's IO part: the built-in container's `io.seq` (32 MiB written with fsync, the
//! host page cache dropped, read back) once without a limit and once with a read-bandwidth
//! limit written into the container's own cgroup: v1 `blkio.throttle.read_bps_device`, v2
//! `io.max rbps=`, on the block device under the scratch directory. Reads after a cache
//! drop are issued by the reading task, so its group is charged on v1 and v2 alike.
//! docs/CLAIMS.md explains the experiment.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{Finding, Verdict};
use crate::env::container::cgroup as cg;
use crate::env::container::{Container, ContainerOptions};
use crate::env::{Environment, InstanceSpec};
use crate::workload::{self, Profile, Sizing, Span};

/// The read limit, bytes per second.
pub const READ_BPS: u64 = 8 << 20;

#[derive(Clone, Debug, Serialize)]
pub struct IoEvidence {
    /// `MAJ:MIN` of the block device limited.
    pub device: String,
    /// The control file written and its value.
    pub control: PathBuf,
    pub value: String,
    pub limit_mb_s: f64,
    /// `io.seq`'s read phase, MB/s, without and with the limit.
    pub read_unlimited_mb_s: f64,
    pub read_limited_mb_s: f64,
}

/// The whole-disk device (`MAJ:MIN`) under `path`: a partition is limited through its disk.
fn block_device(path: &Path) -> Result<String> {
    let dev = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .dev();
    let (maj, min) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    if maj == 0 || !sys.exists() {
        bail!(
            "the scratch directory {} is on a filesystem with no block device ({maj}:{min}): point --scratch at a disk-backed filesystem",
            path.display()
        );
    }
    if sys.join("partition").exists() {
        let parent = sys
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(|p| p.join("dev")))
            .context("finding the disk of a partition in /sys")?;
        return Ok(std::fs::read_to_string(&parent)
            .with_context(|| format!("reading {}", parent.display()))?
            .trim()
            .to_string());
    }
    Ok(format!("{maj}:{min}"))
}

/// The container group's read-limit file and the value that sets `READ_BPS` on `device`.
fn control(dirs: &[PathBuf], device: &str) -> Result<(PathBuf, String)> {
    if let Some(f) = dirs
        .iter()
        .map(|d| d.join("blkio.throttle.read_bps_device"))
        .find(|f| f.exists())
    {
        return Ok((f, format!("{device} {READ_BPS}")));
    }
    if let Some(f) = dirs.iter().map(|d| d.join("io.max")).find(|f| f.exists()) {
        return Ok((f, format!("{device} rbps={READ_BPS}")));
    }
    bail!("no IO controller with a bandwidth limit in the container's cgroup (neither v1 blkio.throttle.read_bps_device nor v2 io.max: the kernel lacks CONFIG_BLK_DEV_THROTTLING or the io controller is not enabled)")
}

/// Run `io.seq` in one built-in container without, then with, the read limit.
pub fn observe(scratch: &Path, seed: u64) -> Result<IoEvidence> {
    let device = block_device(scratch)?;
    let w = workload::by_name("io.seq").context("the io.seq workload is missing")?;
    let p = (w.prepare)(
        Sizing {
            profile: Profile::Quick,
            span: Span::Short,
        },
        seed,
    );
    let tsc_hz = crate::tsc::calibrate(Duration::from_millis(50));
    let mut c = Container::new("container", ContainerOptions::default());
    c.start(&InstanceSpec {
        work_size: p.work_bytes.next_multiple_of(2 << 20),
        disk_size: p.disk_bytes,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(60),
        thp: false,
        cpu: None,
        threads: 1,
        thread_cpus: Vec::new(),
    })
    .context("starting the container of claim 3's IO limit")?;
    let measured = (|| -> Result<IoEvidence> {
        let read = |c: &mut Container| -> Result<f64> {
            let raw = c
                .invoke(&p.invocation)
                .context("running io.seq in the container")?;
            let m = (w.interpret)(&p, &raw, tsc_hz)?;
            m.iter()
                .find(|m| m.name == "read")
                .map(|m| m.value)
                .context("io.seq returned no read metric")
        };
        let unlimited = read(&mut c)?;
        let (file, value) = control(&c.cgroup_dirs(), &device)?;
        cg::write_file(&file, &value)?;
        let limited = read(&mut c)?;
        Ok(IoEvidence {
            device: device.clone(),
            control: file,
            value,
            limit_mb_s: READ_BPS as f64 / 1e6,
            read_unlimited_mb_s: unlimited,
            read_limited_mb_s: limited,
        })
    })();
    let stopped = c.stop();
    let e = measured?;
    stopped?;
    Ok(e)
}

/// The IO finding of claim 3.
pub fn finding(e: &Result<IoEvidence, String>) -> Finding {
    match e {
        Ok(io) => Finding {
            subject: format!("IO read limit {:.1} MB/s", io.limit_mb_s),
            evidence: format!(
                "io.seq's read phase in the container: {:.1} MB/s without a limit, {:.1} MB/s with `{}` in {}",
                io.read_unlimited_mb_s,
                io.read_limited_mb_s,
                io.value,
                io.control.display()
            ),
            // The limit holds when the limited reads stay at or under it (10% slack for the
            // throttle's accounting slice) and below the unlimited ones.
            verdict: if io.read_limited_mb_s <= io.limit_mb_s * 1.1
                && io.read_limited_mb_s < io.read_unlimited_mb_s
            {
                Verdict::Supported
            } else if io.read_unlimited_mb_s <= io.limit_mb_s * 1.1 {
                Verdict::Inconclusive {
                    settle: "the device was no faster than the limit without it: a faster disk or a lower limit".into(),
                }
            } else {
                Verdict::Refuted
            },
        },
        Err(reason) => Finding {
            subject: "IO limit".into(),
            evidence: String::new(),
            verdict: Verdict::NotTestable {
                reason: reason.clone(),
            },
        },
    }
}
