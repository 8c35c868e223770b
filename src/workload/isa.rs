//! ISA tiers: the vector instruction sets the image has kernels for (`cpu.fp`,
//! `mem.stream`), which tiers a CPU (or a guest's CPUID) offers, the `--isa` choice, and
//! the check that the tier the image ran is the one asked for (docs/ARCHITECTURE.md,
//! "ISA tiers").

use isobench_abi::{FLAG_ISA_MASK, FLAG_ISA_SHIFT, ISA_AVX2, ISA_AVX512, ISA_SSE2, RESULT_ISA};

use super::ChecksumMismatch;
use crate::image::{Invocation, RawRun};

/// One tier, lowest first (the order is the comparison: a CPU that runs a tier runs every
/// lower one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    Sse2,
    Avx2,
    Avx512,
}

/// The workloads that have a kernel per tier.
pub const TIERED: [&str; 2] = ["cpu.fp", "mem.stream"];

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Sse2, Isa::Avx2, Isa::Avx512];

    /// The name as typed and recorded (`sse2`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Sse2 => "sse2",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// What the tier's kernels use, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Isa::Sse2 => "SSE2, 128-bit vectors, multiply then add",
            Isa::Avx2 => "AVX2 + FMA, 256-bit vectors, fused multiply-add",
            Isa::Avx512 => "AVX-512F, 512-bit vectors, fused multiply-add",
        }
    }

    /// The image's code (`ISA_*`).
    pub fn code(self) -> u64 {
        match self {
            Isa::Sse2 => ISA_SSE2,
            Isa::Avx2 => ISA_AVX2,
            Isa::Avx512 => ISA_AVX512,
        }
    }

    fn from_code(code: u64) -> Option<Isa> {
        Isa::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The `flags` bits that ask the image for this tier.
    pub fn flag(self) -> u64 {
        self.code() << FLAG_ISA_SHIFT
    }

    /// The tier an invocation asks for (SSE2 when it asks for none).
    pub fn of_invocation(inv: &Invocation) -> Isa {
        Isa::from_code((inv.flags & FLAG_ISA_MASK) >> FLAG_ISA_SHIFT).unwrap_or(Isa::Sse2)
    }

    /// Ask `inv` for this tier, if its workload has tiers; other invocations are unchanged.
    pub fn apply(self, inv: &mut Invocation) {
        if TIERED.contains(&inv.name) {
            inv.flags = (inv.flags & !FLAG_ISA_MASK) | self.flag();
        }
    }

    /// The tiers of a CPUID, as the image decides (`image/src/isa.rs`): AVX2 needs
    /// leaf 1 ECX FMA (12), XSAVE (26) and AVX (28), leaf 7 EBX AVX2 (5) and XCR0 bits 0-2;
    /// AVX-512 also leaf 7 EBX AVX512F (16) and XCR0 bits 5-7. `xcr0` is the state the OS
    /// enables (natively) or the VMM may enable (in a guest).
    pub fn tiers_of(leaf1_ecx: u32, leaf7_ebx: u32, xcr0: u64) -> Vec<Isa> {
        let mut t = vec![Isa::Sse2];
        let avx = leaf1_ecx & (1 << 12) != 0
            && leaf1_ecx & (1 << 26) != 0
            && leaf1_ecx & (1 << 28) != 0
            && leaf7_ebx & (1 << 5) != 0
            && xcr0 & 0b111 == 0b111;
        if avx {
            t.push(Isa::Avx2);
            if leaf7_ebx & (1 << 16) != 0 && xcr0 & 0xe0 == 0xe0 {
                t.push(Isa::Avx512);
            }
        }
        t
    }

    /// The tiers this host's CPU and kernel run natively (std's runtime detection, which
    /// also checks that the kernel enabled the register state).
    pub fn host_tiers() -> Vec<Isa> {
        let mut t = vec![Isa::Sse2];
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            t.push(Isa::Avx2);
            if std::arch::is_x86_feature_detected!("avx512f") {
                t.push(Isa::Avx512);
            }
        }
        t
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of tiers, comma-separated (`sse2, avx2`).
pub fn list(tiers: &[Isa]) -> String {
    tiers
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--isa`: one tier for every environment, or the best they all run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsaChoice {
    Best,
    Tier(Isa),
}

/// Parse `--isa`: `sse2`, `avx2`, `avx512` or `best`.
pub fn parse_choice(s: &str) -> Result<IsaChoice, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "best" => Ok(IsaChoice::Best),
        t => Isa::ALL
            .into_iter()
            .find(|i| i.name() == t)
            .map(IsaChoice::Tier)
            .ok_or_else(|| format!("--isa '{s}' is not a tier: use sse2, avx2, avx512 or best")),
    }
}

/// Why no tier could be chosen.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TierError {
    #[error("--isa {wanted}: the {env} environment cannot run it here (it offers {offered}); use --isa best, or a tier every environment offers")]
    NotOffered {
        wanted: Isa,
        env: String,
        offered: String,
    },
}

/// The one tier every environment runs: `choice` itself if they all offer it, or the
/// highest tier common to all (`Best`). `offers` is (environment label, its tiers).
pub fn choose(choice: IsaChoice, offers: &[(String, Vec<Isa>)]) -> Result<Isa, TierError> {
    match choice {
        IsaChoice::Tier(t) => match offers.iter().find(|(_, o)| !o.contains(&t)) {
            Some((env, o)) => Err(TierError::NotOffered {
                wanted: t,
                env: env.clone(),
                offered: list(o),
            }),
            None => Ok(t),
        },
        IsaChoice::Best => Ok(Isa::ALL
            .into_iter()
            .rev()
            .find(|t| offers.iter().all(|(_, o)| o.contains(t)))
            .unwrap_or(Isa::Sse2)),
    }
}

/// Check that a tiered kernel ran the tier its invocation asked for (the image writes it to
/// `results[RESULT_ISA]` as tier + 1).
pub fn check_ran(inv: &Invocation, raw: &RawRun) -> Result<(), ChecksumMismatch> {
    let wanted = Isa::of_invocation(inv);
    let ran = raw.results[RESULT_ISA];
    if ran == wanted.code() + 1 {
        return Ok(());
    }
    Err(ChecksumMismatch {
        workload: inv.name.into(),
        got: match ran.checked_sub(1).and_then(Isa::from_code) {
            Some(t) => format!("ISA tier {t}"),
            None => format!("ISA tier code {ran}"),
        },
        expected: format!("ISA tier {wanted}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(list: &[(&str, &[Isa])]) -> Vec<(String, Vec<Isa>)> {
        list.iter()
            .map(|(e, t)| (e.to_string(), t.to_vec()))
            .collect()
    }

    #[test]
    fn best_is_the_highest_tier_every_environment_offers() {
        let all = [Isa::Sse2, Isa::Avx2, Isa::Avx512];
        let two = [Isa::Sse2, Isa::Avx2];
        let o = offers(&[("native", &all), ("vm", &two)]);
        assert_eq!(choose(IsaChoice::Best, &o), Ok(Isa::Avx2));
        let o = offers(&[("native", &all), ("container", &all)]);
        assert_eq!(choose(IsaChoice::Best, &o), Ok(Isa::Avx512));
        assert_eq!(choose(IsaChoice::Best, &[]), Ok(Isa::Avx512));
    }

    #[test]
    fn a_tier_an_environment_lacks_is_refused_naming_it() {
        let o = offers(&[
            ("native", &[Isa::Sse2, Isa::Avx2, Isa::Avx512]),
            ("vm", &[Isa::Sse2]),
        ]);
        let e = choose(IsaChoice::Tier(Isa::Avx2), &o).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("vm") && msg.contains("offers sse2") && msg.contains("--isa best"),
            "{msg}"
        );
        assert_eq!(choose(IsaChoice::Tier(Isa::Sse2), &o), Ok(Isa::Sse2));
    }

    #[test]
    fn tiers_follow_cpuid_and_xcr0() {
        let l1 = (1 << 12) | (1 << 26) | (1 << 28);
        let l7 = (1 << 5) | (1 << 16);
        assert_eq!(Isa::tiers_of(l1, l7, 0xe7), Isa::ALL.to_vec());
        // The OS (or VMM) did not enable the AVX-512 state: no AVX-512.
        assert_eq!(Isa::tiers_of(l1, l7, 0x07), vec![Isa::Sse2, Isa::Avx2]);
        // No FMA: no AVX2 tier, whatever else is there.
        assert_eq!(Isa::tiers_of(l1 & !(1 << 12), l7, 0xe7), vec![Isa::Sse2]);
        assert_eq!(Isa::tiers_of(l1, 1 << 5, 0xe7), vec![Isa::Sse2, Isa::Avx2]);
    }

    #[test]
    fn parse_and_apply() {
        assert_eq!(parse_choice("best"), Ok(IsaChoice::Best));
        assert_eq!(parse_choice("AVX512"), Ok(IsaChoice::Tier(Isa::Avx512)));
        let e = parse_choice("avx").unwrap_err();
        assert!(e.contains("sse2, avx2, avx512 or best"), "{e}");
        let mut inv = Invocation {
            name: "cpu.fp",
            workload: 2,
            params: [0; 8],
            flags: 1,
        };
        Isa::Avx2.apply(&mut inv);
        assert_eq!(Isa::of_invocation(&inv), Isa::Avx2);
        assert_eq!(inv.flags & 1, 1, "other flags kept");
        let mut io = Invocation {
            name: "io.seq",
            ..inv.clone()
        };
        io.flags = 0;
        Isa::Avx512.apply(&mut io);
        assert_eq!(io.flags, 0, "untiered workloads are unchanged");
    }

    #[test]
    fn the_host_offers_sse2_and_a_prefix_of_the_tiers() {
        let t = Isa::host_tiers();
        assert_eq!(t[0], Isa::Sse2);
        assert_eq!(t, Isa::ALL[..t.len()].to_vec());
    }
}
