//! Facts about the host a run happens on (CPU, memory, kernel, KVM flavour, nesting,
//! cgroup layout, THP, clock source, TSC), read from /proc and /sys.

use std::fs;
use std::time::Duration;

use crate::env::vm;
use crate::results::HostFacts;
use crate::tsc;

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// The CPU model name from /proc/cpuinfo.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Total memory in bytes from /proc/meminfo.
pub fn memory_bytes() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `v2` (unified only), `v1` (legacy only) or `hybrid`, from a mountinfo text.
pub fn cgroup_version_from_mountinfo(mountinfo: &str) -> String {
    let mut v1 = false;
    let mut v2 = false;
    for line in mountinfo.lines() {
        let Some((_, after)) = line.split_once(" - ") else {
            continue;
        };
        match after.split_whitespace().next() {
            Some("cgroup") => v1 = true,
            Some("cgroup2") => v2 = true,
            _ => {}
        }
    }
    match (v1, v2) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    }
    .into()
}

/// The selected value of a sysfs multiple-choice file like `always [madvise] never`.
pub fn selected_choice(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with('[') && w.ends_with(']'))
        .map(|w| w.trim_matches(&['[', ']'][..]).to_string())
        .unwrap_or_else(|| text.trim().to_string())
}

/// Gather the host facts. Calibrates the TSC (about half a second).
pub fn facts() -> HostFacts {
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| {
            format!(
                "{} {}",
                u.release().to_string_lossy(),
                u.version().to_string_lossy()
            )
        })
        .unwrap_or_else(|| "unknown".into());
    let hostname = uname
        .as_ref()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default();
    HostFacts {
        hostname,
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes: memory_bytes(),
        kernel,
        kvm_flavour: vm::detect_flavour().name().to_string(),
        virtualized: vm::host_is_nested(),
        cgroup_version: cgroup_version_from_mountinfo(
            &fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        ),
        thp: read_trim("/sys/kernel/mm/transparent_hugepage/enabled")
            .map(|s| selected_choice(&s))
            .unwrap_or_else(|| "unavailable".into()),
        clocksource: read_trim("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_else(|| "unknown".into()),
        tsc_hz: tsc::calibrate(Duration::from_millis(100)),
        tsc_source: "calibrated against CLOCK_MONOTONIC (median of 5 × 100 ms)".into(),
        free_page_reporting: free_page_reporting(std::path::Path::new("/sys/bus/virtio/devices")),
    }
}

/// The virtio device id of a memory balloon, and its free page reporting feature bit.
const VIRTIO_ID_BALLOON: &str = "0x0005";
const VIRTIO_BALLOON_F_REPORTING: usize = 5;

/// Whether a virtio balloon under `devices` (`/sys/bus/virtio/devices`) negotiated free
/// page reporting with its hypervisor: its `features` file is one `0`/`1` per feature bit.
pub fn free_page_reporting(devices: &std::path::Path) -> bool {
    let Ok(entries) = fs::read_dir(devices) else {
        return false;
    };
    entries.flatten().any(|e| {
        let read = |f: &str| fs::read_to_string(e.path().join(f)).unwrap_or_default();
        read("device").trim() == VIRTIO_ID_BALLOON
            && read("features").as_bytes().get(VIRTIO_BALLOON_F_REPORTING) == Some(&b'1')
    })
}

/// The run's warning when IO workloads run on a host that reports free pages.
pub fn free_page_reporting_warning() -> String {
    "this host is a VM whose balloon reports free pages to its hypervisor: page-cache pages \
     reused a few seconds after they were freed cost a hypervisor fault each, so IO throughput \
     can swing several-fold with timing (docs/METHODOLOGY.md, \"IO on a VM that reports free \
     pages\"); compare IO figures by their paired intervals, not single samples"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_layouts() {
        let hybrid = "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(cgroup_version_from_mountinfo(hybrid), "hybrid");
        assert_eq!(
            cgroup_version_from_mountinfo("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            "v2"
        );
        assert_eq!(
            cgroup_version_from_mountinfo(
                "31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
            ),
            "v1"
        );
        assert_eq!(cgroup_version_from_mountinfo(""), "none");
    }

    #[test]
    fn a_balloon_with_the_reporting_bit_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = |name: &str, id: &str, features: &str| {
            let d = dir.path().join(name);
            fs::create_dir_all(&d).expect("mkdir");
            fs::write(d.join("device"), format!("{id}\n")).expect("write");
            fs::write(d.join("features"), format!("{features}\n")).expect("write");
        };
        dev("virtio1", "0x0002", "0000011111");
        assert!(!free_page_reporting(dir.path()));
        dev("virtio0", VIRTIO_ID_BALLOON, "0110000000");
        assert!(!free_page_reporting(dir.path()));
        dev("virtio0", VIRTIO_ID_BALLOON, "0110010100");
        assert!(free_page_reporting(dir.path()));
        assert!(!free_page_reporting(&dir.path().join("missing")));
    }

    #[test]
    fn thp_choice() {
        assert_eq!(selected_choice("always [madvise] never\n"), "madvise");
        assert_eq!(selected_choice("[always] madvise never"), "always");
    }
}
