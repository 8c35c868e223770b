//! The guest's machine layout that the VMM writes before the first instruction: the GDT
//! (with a TSS), the fault-only IDT and its ring-0 stubs, and 4-level identity page tables
//! with 4 KiB or 2 MiB leaves (docs/KVM.md, "Entering the image at ring 3").
//!
//! Everything here is pure: it produces bytes and words; `mod.rs` copies them into guest
//! memory. The low 2 MiB hold the VMM's ring-0 structures and are mapped supervisor-only,
//! so a ring-3 touch of them (e.g. `WL_TEST_FAULT` writing address 8) is a page fault, as
//! natively, where the low 4 MiB are never mapped.

use isobench_abi::{HOSTCALL_PORT, IMAGE_BASE, LOW_END, PAGE_TABLE_BASE};

use crate::plan::GuestPageSize;

/// Guest-physical (= virtual) address of the GDT.
pub const GDT_ADDR: u64 = 0x1000;
/// Address of the IDT (fault vectors 0..31 only).
pub const IDT_ADDR: u64 = 0x2000;
/// Address of the 64-bit TSS (only RSP0 matters: the fault handlers' stack).
pub const TSS_ADDR: u64 = 0x3000;
/// Address of the fault stubs, one per vector, `FAULT_STUB_SIZE` bytes apart (after the
/// TSS and its I/O bitmap).
pub const FAULT_STUBS_ADDR: u64 = 0x6000;
/// Bytes between two fault stubs.
pub const FAULT_STUB_SIZE: u64 = 16;
/// Top of the ring-0 stack the CPU switches to on a fault from ring 3.
pub const FAULT_STACK_TOP: u64 = 0x10000;
/// End of the supervisor-only low region (GDT, IDT, TSS, stubs, fault stack).
pub const SUPERVISOR_END: u64 = 0x20_0000;
/// Port the fault stubs write their vector to. VMM-internal: the image never uses it.
pub const FAULT_PORT: u16 = HOSTCALL_PORT + 1;
/// Number of IDT gates: the architectural exception vectors.
pub const IDT_VECTORS: u64 = 32;

/// The low region ring 3 may use: the image, control and hostcall pages, stack, records.
pub const USER_LOW_START: u64 = IMAGE_BASE;
/// End of the user low region: the page tables above it are not mapped at all.
pub const USER_LOW_END: u64 = PAGE_TABLE_BASE;

/// GDT selectors (index × 8), in the order SYSRET expects.
pub const KERNEL_CODE_SEL: u16 = 0x08;
pub const KERNEL_DATA_SEL: u16 = 0x10;
pub const USER_DATA_SEL: u16 = 0x18;
pub const USER_CODE_SEL: u16 = 0x20;
pub const TSS_SEL: u16 = 0x28;
/// Bytes in the GDT (5 descriptors + a 16-byte TSS descriptor).
pub const GDT_SIZE: u64 = 7 * 8;
/// Size of the 64-bit TSS proper; the I/O permission bitmap follows it.
pub const TSS_HEADER: u64 = 104;
/// Size of the TSS including a full I/O bitmap (65536 ports, one bit each) and its
/// terminating 0xff byte. With IOPL 3 the bitmap should not matter, but kvm_pvm checks it
/// for `out` at CPL 3 (verified: no bitmap = #GP), so every port is allowed here.
pub const TSS_SIZE: u64 = TSS_HEADER + 8192 + 1;

/// CR0: PE MP ET NE WP PG (EM and TS clear, so SSE works).
pub const CR0: u64 = 0x8001_0033;
/// CR4: PAE OSFXSR OSXMMEXCPT.
pub const CR4: u64 = 0x620;
/// CR4.OSXSAVE: XSAVE and XCR0 enabled (set when the VMM gives the guest an XCR0).
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// EFER: LME LMA.
pub const EFER: u64 = 0x500;
/// RFLAGS at entry: IOPL 3 (so `out` works at CPL 3), reserved bit 1, interrupts off.
pub const RFLAGS: u64 = 0x3002;

// The ring-0 structures must not overlap each other, and all sit in the supervisor region.
const _: () = assert!(GDT_ADDR + GDT_SIZE <= IDT_ADDR);
const _: () = assert!(IDT_ADDR + IDT_VECTORS * 16 <= TSS_ADDR);
const _: () = assert!(TSS_ADDR + TSS_SIZE <= FAULT_STUBS_ADDR);
const _: () = assert!(FAULT_STUBS_ADDR + IDT_VECTORS * FAULT_STUB_SIZE <= FAULT_STACK_TOP - 0x2000);
const _: () = assert!(FAULT_STACK_TOP <= SUPERVISOR_END && SUPERVISOR_END <= USER_LOW_START);

/// Why the layout could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The page tables do not fit in `[PAGE_TABLE_BASE, LOW_END)`.
    #[error("the guest page tables need {needed} bytes but [{base:#x}, {limit:#x}) holds {available}: use --guest-page 2m or less working memory")]
    TablesTooLarge {
        needed: u64,
        available: u64,
        base: u64,
        limit: u64,
    },
    /// A mapping is not aligned to the page size (a bug in the caller).
    #[error("mapping [{start:#x}, +{len:#x}) is not aligned to the {page} guest page size")]
    Unaligned {
        start: u64,
        len: u64,
        page: &'static str,
    },
    /// Two mappings overlap (a bug in the caller).
    #[error("guest address {addr:#x} is mapped twice")]
    Overlap { addr: u64 },
}

/// One identity-mapped range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub len: u64,
    /// Accessible from ring 3 (U/S set on the leaf).
    pub user: bool,
}

/// The standard mappings: supervisor low 2 MiB, user `[USER_LOW_START, USER_LOW_END)`, and
/// the working memory at `work_base` (`work_len` bytes, rounded up to the page size).
pub fn standard_mappings(page: GuestPageSize, work_base: u64, work_len: u64) -> Vec<Mapping> {
    let mut maps = vec![
        Mapping {
            start: 0,
            len: SUPERVISOR_END,
            user: false,
        },
        Mapping {
            start: USER_LOW_START,
            len: USER_LOW_END - USER_LOW_START,
            user: true,
        },
    ];
    if work_len > 0 {
        maps.push(Mapping {
            start: work_base,
            len: work_len.next_multiple_of(page.bytes()),
            user: true,
        });
    }
    maps
}

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const ENTRIES: usize = 512;

/// 4-level page tables, laid out as consecutive 4 KiB pages starting at `base`
/// (page 0 is the PML4, loaded into CR3).
#[derive(Clone, Debug)]
pub struct PageTables {
    pub base: u64,
    /// All table pages, `512 × pages` words.
    pub words: Vec<u64>,
}

impl PageTables {
    /// Build identity tables for `maps` with `page`-sized leaves, the tables at `base`, and
    /// fail if they would pass `limit`.
    pub fn build(
        page: GuestPageSize,
        maps: &[Mapping],
        base: u64,
        limit: u64,
    ) -> Result<PageTables, LayoutError> {
        let max_pages = ((limit - base) / 4096) as usize;
        let mut t = PageTables {
            base,
            words: vec![0; ENTRIES],
        };
        let step = page.bytes();
        for m in maps {
            if m.start % step != 0 || m.len % step != 0 {
                return Err(LayoutError::Unaligned {
                    start: m.start,
                    len: m.len,
                    page: page.name(),
                });
            }
            let leaf_flags = PRESENT | WRITABLE | if m.user { USER } else { 0 };
            let mut va = m.start;
            while va < m.start + m.len {
                let pdpt = t.child(0, index(va, 39), max_pages)?;
                let pd = t.child(pdpt, index(va, 30), max_pages)?;
                let slot = match page {
                    GuestPageSize::Size2M => pd * ENTRIES + index(va, 21),
                    GuestPageSize::Size4K => {
                        let pt = t.child(pd, index(va, 21), max_pages)?;
                        pt * ENTRIES + index(va, 12)
                    }
                };
                if t.words[slot] != 0 {
                    return Err(LayoutError::Overlap { addr: va });
                }
                t.words[slot] = va
                    | leaf_flags
                    | if page == GuestPageSize::Size2M {
                        HUGE
                    } else {
                        0
                    };
                va += step;
            }
        }
        Ok(t)
    }

    /// The table page that entry `idx` of table page `parent` points to, allocated if absent.
    fn child(&mut self, parent: usize, idx: usize, max_pages: usize) -> Result<usize, LayoutError> {
        let slot = parent * ENTRIES + idx;
        let e = self.words[slot];
        if e & PRESENT != 0 {
            if e & HUGE != 0 {
                return Err(LayoutError::Overlap {
                    addr: e & ADDR_MASK,
                });
            }
            return Ok(((e & ADDR_MASK) - self.base) as usize / 4096);
        }
        let pages = self.words.len() / ENTRIES;
        if pages + 1 > max_pages {
            return Err(LayoutError::TablesTooLarge {
                needed: (pages as u64 + 1) * 4096,
                available: max_pages as u64 * 4096,
                base: self.base,
                limit: self.base + max_pages as u64 * 4096,
            });
        }
        self.words.resize((pages + 1) * ENTRIES, 0);
        // Every non-leaf level carries U/S and R/W: the leaf decides (docs/KVM.md).
        self.words[slot] = (self.base + pages as u64 * 4096) | PRESENT | WRITABLE | USER;
        Ok(pages)
    }

    /// The bytes to copy to `base`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Walk the tables like the MMU: the physical address and whether ring 3 may access it.
    pub fn translate(&self, va: u64) -> Option<(u64, bool)> {
        let mut table = 0usize;
        let mut user = true;
        for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
            let e = self.words[table * ENTRIES + index(va, shift)];
            if e & PRESENT == 0 {
                return None;
            }
            user &= e & USER != 0;
            let leaf = level == 1 || (level == 2 && e & HUGE != 0);
            if leaf {
                let mask = (1u64 << shift) - 1;
                return Some(((e & ADDR_MASK & !mask) | (va & mask), user));
            }
            table = ((e & ADDR_MASK) - self.base) as usize / 4096;
        }
        None
    }
}

fn index(va: u64, shift: u32) -> usize {
    ((va >> shift) & 0x1ff) as usize
}

/// The GDT: null, kernel code, kernel data, user data, user code (64-bit), 64-bit TSS.
pub fn gdt() -> [u64; 7] {
    let limit = TSS_SIZE - 1;
    let base = TSS_ADDR;
    // Type 0xb: busy 64-bit TSS, matching the TR cache we load through KVM_SET_SREGS.
    let tss_low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x8b << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    let tss_high = base >> 32;
    [
        0,
        0x00af_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x00cf_f300_0000_ffff,
        0x00af_fb00_0000_ffff,
        tss_low,
        tss_high,
    ]
}

/// The 64-bit TSS: RSP0 = the fault stack, and an I/O bitmap allowing every port.
pub fn tss() -> Vec<u8> {
    let mut t = vec![0u8; TSS_SIZE as usize];
    t[4..12].copy_from_slice(&FAULT_STACK_TOP.to_le_bytes());
    t[102..104].copy_from_slice(&(TSS_HEADER as u16).to_le_bytes());
    t[TSS_SIZE as usize - 1] = 0xff;
    t
}

/// The IDT: vectors 0..31 as ring-0 interrupt gates to their stubs.
pub fn idt() -> Vec<u64> {
    let mut v = Vec::with_capacity(2 * IDT_VECTORS as usize);
    for vector in 0..IDT_VECTORS {
        let off = FAULT_STUBS_ADDR + vector * FAULT_STUB_SIZE;
        let low = (off & 0xffff)
            | ((KERNEL_CODE_SEL as u64) << 16)
            | (0x8e << 40)
            | (((off >> 16) & 0xffff) << 48);
        v.push(low);
        v.push(off >> 32);
    }
    v
}

/// The fault stubs: `mov eax, vector; mov dx, FAULT_PORT; out dx, eax; jmp $`. They run at
/// ring 0 only on the fault path (never timed), use no SSE, and leave the exception frame
/// untouched at RSP for the VMM to read.
pub fn fault_stubs() -> Vec<u8> {
    let mut code = Vec::with_capacity((IDT_VECTORS * FAULT_STUB_SIZE) as usize);
    for vector in 0..IDT_VECTORS as u32 {
        let mut stub = vec![0xb8];
        stub.extend_from_slice(&vector.to_le_bytes());
        stub.extend_from_slice(&[0x66, 0xba]);
        stub.extend_from_slice(&FAULT_PORT.to_le_bytes());
        stub.extend_from_slice(&[0xef, 0xeb, 0xfe]);
        stub.resize(FAULT_STUB_SIZE as usize, 0xcc);
        code.extend_from_slice(&stub);
    }
    code
}

/// Whether the CPU pushes an error code for `vector`.
pub fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// The mnemonic and name of an exception vector.
pub fn vector_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating point",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "reserved vector",
    }
}

/// Limit of the page-table region.
pub const PAGE_TABLE_LIMIT: u64 = LOW_END;

#[cfg(test)]
mod tests {
    use super::*;
    use isobench_abi::*;

    fn tables(page: GuestPageSize, work: u64) -> PageTables {
        PageTables::build(
            page,
            &standard_mappings(page, WORK_BASE, work),
            PAGE_TABLE_BASE,
            PAGE_TABLE_LIMIT,
        )
        .unwrap()
    }

    #[test]
    fn identity_mapping_with_user_bit_where_ring3_runs() {
        for page in [GuestPageSize::Size4K, GuestPageSize::Size2M] {
            let t = tables(page, 64 << 20);
            for va in [
                IMAGE_BASE,
                CONTROL_ADDR,
                HOSTCALL_ADDR + 40,
                STACK_TOP - 8,
                RECORD_ADDR + RECORD_SIZE - 1,
                WORK_BASE,
                WORK_BASE + (64 << 20) - 1,
            ] {
                assert_eq!(t.translate(va), Some((va, true)), "{page:?} {va:#x}");
            }
            for va in [GDT_ADDR, IDT_ADDR, TSS_ADDR, FAULT_STUBS_ADDR, 8] {
                assert_eq!(t.translate(va), Some((va, false)), "{page:?} {va:#x}");
            }
            for va in [
                SUPERVISOR_END,
                PAGE_TABLE_BASE,
                LOW_END,
                WORK_BASE - 1,
                WORK_BASE + (64 << 20),
            ] {
                assert_eq!(t.translate(va), None, "{page:?} {va:#x}");
            }
        }
    }

    #[test]
    fn work_rounded_to_page_and_tables_sized() {
        let t = tables(GuestPageSize::Size2M, 4096);
        assert_eq!(
            t.translate(WORK_BASE + (2 << 20) - 1),
            Some((WORK_BASE + (2 << 20) - 1, true))
        );
        // PML4 + PDPT + PD for 2 MiB pages: low and 1 GiB sit in different PDPT slots.
        assert_eq!(t.words.len() / 512, 4);
        let t = tables(GuestPageSize::Size4K, 1 << 30);
        assert!(t.words.len() / 512 > 512);
    }

    #[test]
    fn too_much_work_for_4k_tables_is_an_error() {
        let e = PageTables::build(
            GuestPageSize::Size4K,
            &standard_mappings(GuestPageSize::Size4K, WORK_BASE, 32 << 30),
            PAGE_TABLE_BASE,
            PAGE_TABLE_LIMIT,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--guest-page 2m"), "{e}");
        // 2 MiB pages map the largest working memory.
        tables(GuestPageSize::Size2M, WORK_MAX_SIZE);
    }

    #[test]
    fn descriptors_match_the_verified_values() {
        let g = gdt();
        assert_eq!(g[1], 0x00af9b000000ffff);
        assert_eq!(g[4], 0x00affb000000ffff);
        // TSS descriptor: base TSS_ADDR, limit covering the I/O bitmap, present busy TSS.
        assert_eq!(g[5] & 0xffff, TSS_SIZE - 1);
        assert_eq!((g[5] >> 16) & 0xff_ffff, TSS_ADDR);
        assert_eq!((g[5] >> 40) & 0xff, 0x8b);
        let idt = idt();
        assert_eq!(idt.len(), 64);
        let off14 = (idt[28] & 0xffff) | ((idt[28] >> 48) << 16);
        assert_eq!(off14, FAULT_STUBS_ADDR + 14 * FAULT_STUB_SIZE);
        let stubs = fault_stubs();
        assert_eq!(&stubs[14 * 16..14 * 16 + 5], &[0xb8, 14, 0, 0, 0]);
        assert_eq!(u16::from_le_bytes([stubs[7], stubs[8]]), FAULT_PORT);
        assert_eq!(
            u64::from_le_bytes(tss()[4..12].try_into().unwrap()),
            FAULT_STACK_TOP
        );
    }
}
