//! How `mem.stream`'s copy stores: as glibc's `memcpy` would for the size each thread copies
//! (non-temporal at or above glibc's threshold, which the host's dynamic loader reports), or
//! as `--stream-copy` forces. docs/METHODOLOGY.md, "STREAM's copy".
//!
//! Why: STREAM's copy loop, built as STREAM is usually built (`gcc -O3`), becomes a call to
//! glibc's `memcpy` per thread, so stream.c's copy figure is whatever `memcpy` does at that
//! size on that host. glibc (2.36) switches to non-temporal stores when one call moves at
//! least `glibc.cpu.x86_non_temporal_threshold` bytes, a tunable it derives from its own
//! reading of the caches (on the development VMs 288 MiB, ¾ of the 384 MiB "shared cache"
//! glibc computes from the guest's CPUID, not ¾ of the real 32 MiB L3). Asking the loader
//! (`ld.so --list-tunables`, glibc ≥ 2.33) gives the value this host's `memcpy` uses,
//! `GLIBC_TUNABLES` included; without it the rule falls back to ¾ of the LLC.

use std::process::Command;
use std::sync::OnceLock;

/// `--stream-copy`: what copy's stores are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopyChoice {
    /// As glibc's `memcpy` would at the size each thread copies.
    #[default]
    Auto,
    /// Ordinary (cached) stores, whatever the size.
    Cached,
    /// Non-temporal stores, whatever the size.
    Nt,
}

impl CopyChoice {
    /// The value as typed and as recorded.
    pub fn name(self) -> &'static str {
        match self {
            CopyChoice::Auto => "auto",
            CopyChoice::Cached => "cached",
            CopyChoice::Nt => "nt",
        }
    }
}

/// Parse `--stream-copy`.
pub fn parse_choice(s: &str) -> Result<CopyChoice, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(CopyChoice::Auto),
        "cached" => Ok(CopyChoice::Cached),
        "nt" => Ok(CopyChoice::Nt),
        _ => Err(format!(
            "--stream-copy '{s}' is not a store kind: use auto (as glibc's memcpy at this size), cached or nt"
        )),
    }
}

/// The size at which this host's glibc `memcpy` turns to non-temporal stores, and where
/// that figure came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub bytes: u64,
    pub source: String,
}

/// glibc's threshold on this host (asked once per process), else ¾ of `llc_bytes`, else
/// `None` (then only a forced choice can say).
pub fn threshold(llc_bytes: Option<u64>) -> Option<Threshold> {
    static GLIBC: OnceLock<Option<u64>> = OnceLock::new();
    match *GLIBC.get_or_init(glibc_threshold) {
        Some(bytes) => Some(Threshold {
            bytes,
            source: "glibc.cpu.x86_non_temporal_threshold, from ld.so --list-tunables".into(),
        }),
        None => llc_bytes.map(|llc| Threshold {
            bytes: llc / 4 * 3,
            source: "¾ of the LLC (this host's glibc loader did not report its threshold)".into(),
        }),
    }
}

/// Whether copy uses non-temporal stores when each thread copies `per_thread_bytes`, and
/// the sentence `run.json` records (`config.options["mem.stream.copy"]`).
pub fn decide(
    choice: CopyChoice,
    per_thread_bytes: u64,
    threshold: Option<&Threshold>,
) -> (bool, String) {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64);
    match (choice, threshold) {
        (CopyChoice::Cached, _) => (false, "cached stores (--stream-copy cached)".into()),
        (CopyChoice::Nt, _) => (true, "non-temporal stores (--stream-copy nt)".into()),
        (CopyChoice::Auto, None) => (
            false,
            "cached stores (no glibc threshold or LLC size known on this host; --stream-copy nt forces non-temporal)".into(),
        ),
        (CopyChoice::Auto, Some(t)) => {
            let nt = per_thread_bytes >= t.bytes;
            let (kind, side) = if nt {
                ("non-temporal stores", "at or above")
            } else {
                ("cached stores", "below")
            };
            (
                nt,
                format!(
                    "{kind}, as glibc's memcpy: each thread copies {}, {side} its non-temporal threshold of {} ({})",
                    mib(per_thread_bytes),
                    mib(t.bytes),
                    t.source
                ),
            )
        }
    }
}

/// The threshold from the dynamic loader this process runs under: `None` when there is no
/// glibc loader (a static build) or it cannot list its tunables (glibc < 2.33).
fn glibc_threshold() -> Option<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let loader = loader_path(&maps)?;
    let out = Command::new(loader).arg("--list-tunables").output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_tunables(&String::from_utf8_lossy(&out.stdout))
}

/// The path of the glibc dynamic loader among `/proc/self/maps` lines.
fn loader_path(maps: &str) -> Option<&str> {
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|f| f.starts_with("ld-linux"))
        })
}

/// `glibc.cpu.x86_non_temporal_threshold: 0x12000000 (min: 0x4040, max: …)` → 0x12000000.
fn parse_tunables(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("glibc.cpu.x86_non_temporal_threshold:")
    })?;
    let value = line.split_whitespace().next()?;
    let v = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => value.parse().ok()?,
    };
    (v > 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaders_tunables_parse() {
        let text = "glibc.cpu.x86_rep_movsb_threshold: 0x840 (min: 0x200, max: 0xffffffffffffffff)\n\
                    glibc.cpu.x86_non_temporal_threshold: 0x12000000 (min: 0x4040, max: 0xfffffffffffffff)\n";
        assert_eq!(parse_tunables(text), Some(288 << 20));
        assert_eq!(
            parse_tunables("glibc.cpu.x86_non_temporal_threshold: 4096\n"),
            Some(4096)
        );
        assert_eq!(parse_tunables("glibc.malloc.tcache_count: 0x0\n"), None);
        assert_eq!(
            parse_tunables("glibc.cpu.x86_non_temporal_threshold: 0x0\n"),
            None
        );
    }

    #[test]
    fn the_loader_is_found_among_the_mappings() {
        let maps = "7f00-7f01 r--p 00000000 fe:00 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f02-7f03 r-xp 00001000 fe:00 456 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n\
                    7ffd-7ffe rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(
            loader_path(maps),
            Some("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        );
        assert_eq!(
            loader_path("7ffd-7ffe rw-p 00000000 00:00 0 [stack]\n"),
            None
        );
    }

    /// isobench is built against glibc on every machine it is developed and tested on (and
    /// CI's): the loader answers, so `auto` follows the real `memcpy`, not the fallback.
    #[test]
    fn this_hosts_loader_reports_its_threshold() {
        let t = threshold(None).expect("glibc's loader reports x86_non_temporal_threshold");
        assert!(t.source.contains("ld.so"), "{t:?}");
        assert!(t.bytes >= 0x4040, "{t:?}");
    }

    #[test]
    fn auto_follows_the_threshold_per_thread_and_forcing_wins() {
        let t = Threshold {
            bytes: 288 << 20,
            source: "test".into(),
        };
        let (nt, why) = decide(CopyChoice::Auto, 128 << 20, Some(&t));
        assert!(!nt);
        assert!(why.starts_with("cached stores"), "{why}");
        assert!(
            why.contains("128 MiB, below") && why.contains("288 MiB"),
            "{why}"
        );
        let (nt, why) = decide(CopyChoice::Auto, 288 << 20, Some(&t));
        assert!(nt, "{why}");
        assert!(why.starts_with("non-temporal"), "{why}");
        assert!(decide(CopyChoice::Nt, 1 << 20, Some(&t)).0);
        assert!(!decide(CopyChoice::Cached, 1 << 30, Some(&t)).0);
        assert!(!decide(CopyChoice::Auto, 1 << 30, None).0);
        let fallback = threshold(Some(32 << 20)).expect("a threshold");
        assert!(fallback.bytes > 0);
    }

    #[test]
    fn choices_parse_and_bad_ones_teach() {
        assert_eq!(parse_choice("NT"), Ok(CopyChoice::Nt));
        assert_eq!(parse_choice("auto"), Ok(CopyChoice::Auto));
        assert_eq!(parse_choice("cached"), Ok(CopyChoice::Cached));
        let e = parse_choice("fast").unwrap_err();
        assert!(e.contains("auto") && e.contains("nt"), "{e}");
    }
}
