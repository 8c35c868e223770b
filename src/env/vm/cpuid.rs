//! The guest's CPU features: the CPUID the VMM gives the vCPU (`KVM_SET_CPUID2`, from
//! `KVM_GET_SUPPORTED_CPUID`), the XCR0 it enables (`KVM_SET_XCRS`, with CR4.OSXSAVE set in
//! the sregs), and so the ISA tiers the image can run in the guest (docs/KVM.md, "ISA tiers
//! in the guest"). All of it is set by the VMM; nothing runs in guest ring 0.

use kvm_bindings::CpuId;
use kvm_ioctls::{Cap, Kvm};

use crate::workload::isa::Isa;

/// XCR0 bits the VMM enables when offered: x87, SSE, AVX, and AVX-512's opmask, ZMM_Hi256
/// and Hi16_ZMM. Nothing else (no AMX, no MPX): the kernels use none of it.
const XCR0_WANTED: u64 = 0b1110_0111;
const XCR0_AVX512: u64 = 0b1110_0000;
const XCR0_AVX: u64 = 0b100;

/// Leaf 1 ECX: FMA, XSAVE, AVX.
const L1_FMA: u32 = 1 << 12;
const L1_XSAVE: u32 = 1 << 26;
const L1_AVX: u32 = 1 << 28;
/// Leaf 7.0 EBX: AVX2; and the AVX-512 bits (F, DQ, IFMA, PF, ER, CD, BW, VL).
const L7_AVX2: u32 = 1 << 5;
const L7_EBX_AVX512: u32 =
    (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31);
/// Leaf 7.0 ECX AVX-512 bits (VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ) and EDX (4VNNIW,
/// 4FMAPS, VP2INTERSECT, FP16).
const L7_ECX_AVX512: u32 = (1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14);
const L7_EDX_AVX512: u32 = (1 << 2) | (1 << 3) | (1 << 8) | (1 << 23);

/// What the guest is given.
pub struct GuestCpu {
    /// For `KVM_SET_CPUID2`.
    pub cpuid: CpuId,
    /// For `KVM_SET_XCRS` (with CR4.OSXSAVE), or `None` when KVM offers no XSAVE (or no
    /// `KVM_CAP_XCRS`): then the guest runs SSE2 only.
    pub xcr0: Option<u64>,
    /// The tiers the image will find in the guest.
    pub tiers: Vec<Isa>,
}

/// The guest CPU from KVM's supported CPUID, with the tiers above `max` hidden (as a KVM
/// without them would hide them; `--vm-max-isa`, for tests).
pub fn guest_cpu(kvm: &Kvm, supported: &CpuId, max: Option<Isa>) -> GuestCpu {
    guest_cpu_from(supported, kvm.check_extension(Cap::Xcrs), max)
}

/// As [`guest_cpu`], with whether KVM has `KVM_CAP_XCRS` given (for tests).
pub fn guest_cpu_from(supported: &CpuId, has_xcrs: bool, max: Option<Isa>) -> GuestCpu {
    let mut cpuid = supported.clone();
    let max = max.unwrap_or(Isa::Avx512);
    for e in cpuid.as_mut_slice() {
        match (e.function, e.index) {
            (1, _) if max < Isa::Avx2 => e.ecx &= !(L1_FMA | L1_AVX),
            (7, 0) => {
                if max < Isa::Avx2 {
                    e.ebx &= !L7_AVX2;
                }
                if max < Isa::Avx512 {
                    e.ebx &= !L7_EBX_AVX512;
                    e.ecx &= !L7_ECX_AVX512;
                    e.edx &= !L7_EDX_AVX512;
                }
            }
            (0xd, 0) => {
                if max < Isa::Avx2 {
                    e.eax &= !(XCR0_AVX as u32);
                }
                if max < Isa::Avx512 {
                    e.eax &= !(XCR0_AVX512 as u32);
                }
            }
            _ => {}
        }
    }
    let find = |f: u32, i: u32| {
        cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == f && e.index == i)
            .copied()
    };
    let leaf1_ecx = find(1, 0).map_or(0, |e| e.ecx);
    let leaf7_ebx = find(7, 0).map_or(0, |e| e.ebx);
    let xcr0 = match find(0xd, 0) {
        Some(d) if has_xcrs && leaf1_ecx & L1_XSAVE != 0 => {
            let offered = d.eax as u64 | (d.edx as u64) << 32;
            Some(offered & XCR0_WANTED).filter(|x| x & 0b11 == 0b11)
        }
        _ => None,
    };
    // OSXSAVE (leaf 1 ECX bit 27) is reflected by KVM from CR4 at run time.
    let tiers = Isa::tiers_of(leaf1_ecx | L1_XSAVE, leaf7_ebx, xcr0.unwrap_or(0));
    GuestCpu { cpuid, xcr0, tiers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    fn entry(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax,
            ebx,
            ecx,
            ..Default::default()
        }
    }

    fn full() -> CpuId {
        CpuId::from_entries(&[
            entry(1, 0, 0, 0, L1_FMA | L1_XSAVE | L1_AVX),
            entry(7, 0, 0, L7_AVX2 | L7_EBX_AVX512, L7_ECX_AVX512),
            // x87 SSE AVX, opmask ZMM, and AMX tile state (bits 17, 18) the VMM must not enable.
            entry(0xd, 0, 0x600e7, 0, 0),
        ])
        .expect("a small CpuId")
    }

    #[test]
    fn every_tier_kvm_offers_reaches_the_guest_and_only_the_wanted_state() {
        let g = guest_cpu_from(&full(), true, None);
        assert_eq!(g.tiers, Isa::ALL.to_vec());
        assert_eq!(g.xcr0, Some(0xe7));
    }

    #[test]
    fn hidden_tiers_leave_cpuid_and_xcr0_consistent() {
        let g = guest_cpu_from(&full(), true, Some(Isa::Avx2));
        assert_eq!(g.tiers, vec![Isa::Sse2, Isa::Avx2]);
        assert_eq!(g.xcr0, Some(0x7));
        let l7 = g.cpuid.as_slice().iter().find(|e| e.function == 7).copied();
        assert_eq!(l7.map(|e| e.ebx & L7_EBX_AVX512), Some(0));
        let g = guest_cpu_from(&full(), true, Some(Isa::Sse2));
        assert_eq!(g.tiers, vec![Isa::Sse2]);
        assert_eq!(g.xcr0, Some(0x3));
    }

    #[test]
    fn without_xcrs_or_xsave_the_guest_runs_sse2() {
        assert_eq!(guest_cpu_from(&full(), false, None).tiers, vec![Isa::Sse2]);
        assert_eq!(guest_cpu_from(&full(), false, None).xcr0, None);
        let no_xsave = CpuId::from_entries(&[
            entry(1, 0, 0, 0, L1_FMA | L1_AVX),
            entry(7, 0, 0, L7_AVX2, 0),
            entry(0xd, 0, 0x7, 0, 0),
        ])
        .expect("a small CpuId");
        assert_eq!(guest_cpu_from(&no_xsave, true, None).tiers, vec![Isa::Sse2]);
    }
}
