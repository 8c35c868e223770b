//! The ISA tier a kernel runs: the one the harness asked for in `flags`, after CPUID and
//! XCR0 say this environment can run it. CPUID is read at run time, here, so the image's
//! bytes are the same on every machine and in every environment (docs/ARCHITECTURE.md,
//! "ISA tiers").

use crate::abi::*;
use core::arch::asm;
use core::arch::x86_64::__cpuid_count;

/// XCR0 bits: x87, SSE (XMM), AVX (upper YMM).
const XCR0_AVX: u64 = 0b111;
/// XCR0 bits for AVX-512: opmask, ZMM_Hi256, Hi16_ZMM (plus the AVX ones).
const XCR0_AVX512: u64 = XCR0_AVX | 0b1110_0000;

/// The highest tier this environment can run, from CPUID and XCR0.
pub fn available() -> u64 {
    // CPUID exists on every x86-64 CPU and is allowed at CPL 3 (a safe intrinsic).
    let leaf0 = __cpuid_count(0, 0);
    let leaf1 = __cpuid_count(1, 0);
    let (fma, osxsave, avx) = (
        leaf1.ecx & (1 << 12) != 0,
        leaf1.ecx & (1 << 27) != 0,
        leaf1.ecx & (1 << 28) != 0,
    );
    if leaf0.eax < 7 || !(fma && osxsave && avx) {
        return ISA_SSE2;
    }
    // Leaf 7 exists (max leaf ≥ 7, checked).
    let leaf7 = __cpuid_count(7, 0);
    let xcr0 = xgetbv0();
    if leaf7.ebx & (1 << 5) == 0 || xcr0 & XCR0_AVX != XCR0_AVX {
        return ISA_SSE2;
    }
    if leaf7.ebx & (1 << 16) != 0 && xcr0 & XCR0_AVX512 == XCR0_AVX512 {
        ISA_AVX512
    } else {
        ISA_AVX2
    }
}

/// XCR0, the register state the OS (or the VMM) enabled for XSAVE.
fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only called when CPUID.1:ECX.OSXSAVE is set, which makes `xgetbv` legal at
    // any CPL; ecx = 0 selects XCR0. No memory is touched.
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags));
    }
    ((hi as u64) << 32) | lo as u64
}

/// The tier `flags` asks for, if this environment can run it: `Err(status)` otherwise.
/// Records the tier in `results[RESULT_ISA]` (as tier + 1).
pub fn requested(cb: &mut ControlBlock) -> Result<u64, u32> {
    let want = (cb.flags & FLAG_ISA_MASK) >> FLAG_ISA_SHIFT;
    if want > ISA_AVX512 {
        return Err(STATUS_BAD_PARAMS);
    }
    if want > available() {
        return Err(STATUS_ISA_UNAVAILABLE);
    }
    cb.results[RESULT_ISA] = want + 1;
    Ok(want)
}
