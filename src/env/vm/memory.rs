//! Guest memory: host anonymous mappings (2 MiB aligned, THP on or off by `madvise`),
//! one per KVM memslot, unmapped in `Drop`, and the only code that touches them, through
//! bounds-checked helpers (a guest address range is translated to a host pointer only
//! after it has been checked to lie wholly inside one region).
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::ptr::NonNull;

use isobench_abi::ControlBlock;

use crate::plan::Thp;

/// Alignment of every host mapping, so that THP can back it with huge pages.
const HOST_ALIGN: usize = 2 << 20;

/// Why guest memory could not be set up or accessed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("mmap of {len} bytes of guest memory failed: {source} (lower the working memory size or free host memory)")]
    Map {
        len: u64,
        #[source]
        source: nix::Error,
    },
    #[error("madvise({advice}) on guest memory failed: {source}")]
    Advise {
        advice: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("KVM_SET_USER_MEMORY_REGION for slot {slot} (guest-physical {gpa:#x}, {len} bytes) failed: {source} (the host may not support guest-physical addresses this high: use less working memory)")]
    Register {
        slot: u32,
        gpa: u64,
        len: u64,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("guest range [{gpa:#x}, +{len:#x}) is not inside guest memory")]
    OutOfBounds { gpa: u64, len: u64 },
}

/// One contiguous region of guest-physical memory and its host mapping.
pub struct Region {
    /// Guest-physical start address.
    pub gpa: u64,
    /// Bytes of guest memory (a multiple of 2 MiB).
    pub len: u64,
    host: NonNull<u8>,
}

impl Region {
    /// Host address of the region's first byte (for `KVM_SET_USER_MEMORY_REGION`).
    pub fn host_addr(&self) -> u64 {
        self.host.as_ptr() as u64
    }
}

/// All guest memory of one VM.
pub struct GuestMemory {
    regions: Vec<Region>,
}

// SAFETY: GuestMemory exclusively owns its mappings (nothing else holds the pointers but the
// KVM memslots of the VM that owns this memory); moving it to another thread is sound.
unsafe impl Send for GuestMemory {}
// SAFETY: every accessor copies through bounds-checked raw pointers into the mappings, which
// stay in place until drop; the vCPU threads of one invocation (`--threads`) share it the way
// their vCPUs share guest memory, each serving its own hostcall page.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Map one region per `(gpa, len, thp)`; `len` is rounded up to 2 MiB.
    pub fn new(layout: &[(u64, u64, Thp)]) -> Result<GuestMemory, MemoryError> {
        let mut mem = GuestMemory {
            regions: Vec::with_capacity(layout.len()),
        };
        for &(gpa, len, thp) in layout {
            let len = len.next_multiple_of(HOST_ALIGN as u64);
            let host = map_aligned(len as usize, thp)?;
            mem.regions.push(Region { gpa, len, host });
        }
        Ok(mem)
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Register every region as a KVM memslot (slot = index).
    pub fn register(&self, vm: &kvm_ioctls::VmFd) -> Result<(), MemoryError> {
        for (slot, r) in self.regions.iter().enumerate() {
            let region = kvm_bindings::kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: r.gpa,
                memory_size: r.len,
                userspace_addr: r.host_addr(),
            };
            // SAFETY: the host range is a live mapping owned by `self`, which outlives the
            // VM: `Machine` declares the VM before the memory, so the VM fd closes first.
            unsafe { vm.set_user_memory_region(region) }.map_err(|source| {
                MemoryError::Register {
                    slot: slot as u32,
                    gpa: r.gpa,
                    len: r.len,
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// The host pointer for `[gpa, gpa + len)` if it lies wholly inside one region.
    fn host_ptr(&self, gpa: u64, len: u64) -> Result<*mut u8, MemoryError> {
        for r in &self.regions {
            if gpa >= r.gpa && gpa - r.gpa <= r.len && len <= r.len - (gpa - r.gpa) {
                // SAFETY: the offset is within the region's mapping (checked just above).
                return Ok(unsafe { r.host.as_ptr().add((gpa - r.gpa) as usize) });
            }
        }
        Err(MemoryError::OutOfBounds { gpa, len })
    }

    /// Copy guest memory into `buf`.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let src = self.host_ptr(gpa, buf.len() as u64)?;
        // SAFETY: src..src+len is inside a live mapping (host_ptr checked it); buf is a
        // distinct host allocation; the vCPU is stopped while the VMM accesses memory.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy `data` into guest memory.
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let dst = self.host_ptr(gpa, data.len() as u64)?;
        // SAFETY: as in `read`, with the roles swapped; the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        Ok(())
    }

    pub fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
        let mut b = [0u8; 8];
        self.read(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn write_u64(&self, gpa: u64, v: u64) -> Result<(), MemoryError> {
        self.write(gpa, &v.to_le_bytes())
    }

    /// `n` little-endian `u64`s starting at `gpa`.
    pub fn read_u64s(&self, gpa: u64, n: u64) -> Result<Vec<u64>, MemoryError> {
        let len = n
            .checked_mul(8)
            .ok_or(MemoryError::OutOfBounds { gpa, len: u64::MAX })?;
        let src = self.host_ptr(gpa, len)?;
        let mut out = vec![0u64; n as usize];
        // SAFETY: `len` bytes at src are inside a mapping (checked); `out` holds exactly
        // `len` bytes; byte copy has no alignment requirement.
        unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr().cast::<u8>(), len as usize) };
        Ok(out)
    }

    /// Write a control block at `gpa`.
    pub fn write_control(&self, gpa: u64, cb: &ControlBlock) -> Result<(), MemoryError> {
        let size = std::mem::size_of::<ControlBlock>();
        let dst = self.host_ptr(gpa, size as u64)?;
        // SAFETY: `size` bytes at dst are inside a mapping (checked); ControlBlock is
        // repr(C) plain integers; write_unaligned makes no alignment assumption.
        unsafe { std::ptr::write_unaligned(dst.cast::<ControlBlock>(), *cb) };
        Ok(())
    }

    /// Read the control block at `gpa`.
    pub fn read_control(&self, gpa: u64) -> Result<ControlBlock, MemoryError> {
        let size = std::mem::size_of::<ControlBlock>();
        let src = self.host_ptr(gpa, size as u64)?;
        // SAFETY: as in `write_control`; every bit pattern is a valid ControlBlock (all
        // fields are integers), so whatever the guest left there is safe to read.
        Ok(unsafe { std::ptr::read_unaligned(src.cast::<ControlBlock>()) })
    }

    /// `pread` from `fd` at `offset` straight into guest memory.
    pub fn pread_into(
        &self,
        fd: RawFd,
        gpa: u64,
        len: u64,
        offset: u64,
    ) -> Result<usize, std::io::Error> {
        let dst = self.host_ptr(gpa, len).map_err(std::io::Error::other)?;
        let offset =
            i64::try_from(offset).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: dst..dst+len is inside a writable guest mapping (checked); the kernel
        // writes at most len bytes there.
        let n = unsafe { libc::pread(fd, dst.cast(), len as usize, offset) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// `pwrite` guest memory to `fd` at `offset`.
    pub fn pwrite_from(
        &self,
        fd: RawFd,
        gpa: u64,
        len: u64,
        offset: u64,
    ) -> Result<usize, std::io::Error> {
        let src = self.host_ptr(gpa, len).map_err(std::io::Error::other)?;
        let offset =
            i64::try_from(offset).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: src..src+len is inside a readable guest mapping (checked).
        let n = unsafe { libc::pwrite(fd, src.cast(), len as usize, offset) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Give `[gpa, gpa + len)` back to the host (`MADV_DONTNEED`): the next guest touch is a
    /// first touch of a zero page. `gpa` must be page-aligned; `len` is rounded up to a page
    /// (which stays inside the region: regions are 2 MiB multiples).
    pub fn discard(&self, gpa: u64, len: u64) -> Result<(), std::io::Error> {
        let len = len.next_multiple_of(4096);
        let p = self.host_ptr(gpa, len).map_err(std::io::Error::other)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: p..p+len is inside one of our private anonymous mappings (checked) and
        // page-aligned (regions are 2 MiB aligned, gpa is page-aligned per the caller);
        // MADV_DONTNEED only zero-fills it, which KVM observes through its MMU notifier.
        let r = unsafe { libc::madvise(p.cast(), len as usize, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        for r in &self.regions {
            // SAFETY: host..host+len is exactly the mapping `map_aligned` kept for this
            // region; the VM using it has been dropped first (field order in `Machine`).
            unsafe { libc::munmap(r.host.as_ptr().cast(), r.len as usize) };
        }
    }
}

/// An anonymous private mapping of `len` bytes (a 2 MiB multiple) at a 2 MiB-aligned address.
fn map_aligned(len: usize, thp: Thp) -> Result<NonNull<u8>, MemoryError> {
    let map_len = len + HOST_ALIGN;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; it replaces
    // nothing. MAP_NORESERVE: like the native runner's work memory, pages are committed on
    // first touch.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(MemoryError::Map {
            len: len as u64,
            source: nix::Error::last(),
        });
    }
    let start = p as usize;
    let aligned = start.next_multiple_of(HOST_ALIGN);
    let head = aligned - start;
    let tail = map_len - head - len;
    // SAFETY: both trims are inside the mapping just made and outside [aligned, +len).
    unsafe {
        if head > 0 {
            libc::munmap(p, head);
        }
        if tail > 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
    }
    let (advice, name) = match thp {
        Thp::On => (libc::MADV_HUGEPAGE, "MADV_HUGEPAGE"),
        Thp::Off => (libc::MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE"),
    };
    // SAFETY: [aligned, +len) is our own mapping; the advice only changes page sizes.
    if unsafe { libc::madvise(aligned as *mut libc::c_void, len, advice) } != 0 {
        let source = nix::Error::last();
        // SAFETY: unmapping the mapping we own and are abandoning.
        unsafe { libc::munmap(aligned as *mut libc::c_void, len) };
        return Err(MemoryError::Advise {
            advice: name,
            source,
        });
    }
    // Guest memory is never inherited: other environments fork runners from this process,
    // and copying the guest's page tables into every fork would slow (and distort the
    // `start` metric of) the native and container environments.
    // SAFETY: [aligned, +len) is our own mapping; MADV_DONTFORK changes no contents.
    if unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_DONTFORK) } != 0 {
        let source = nix::Error::last();
        // SAFETY: unmapping the mapping we own and are abandoning.
        unsafe { libc::munmap(aligned as *mut libc::c_void, len) };
        return Err(MemoryError::Advise {
            advice: "MADV_DONTFORK",
            source,
        });
    }
    NonNull::new(aligned as *mut u8).ok_or(MemoryError::Map {
        len: len as u64,
        source: nix::Error::EINVAL,
    })
}

/// The host's THP policy (`always`, `madvise`, `never`), for facts.
pub fn host_thp_policy() -> String {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .find(|w| w.starts_with('['))
                .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_bounds_checked() {
        let m = GuestMemory::new(&[(0, 4 << 20, Thp::Off), (1 << 30, 4096, Thp::Off)]).unwrap();
        assert_eq!(m.regions()[1].len, 2 << 20);
        assert_eq!(m.regions()[0].host_addr() % (2 << 20), 0);
        m.write_u64(8, 0x1234).unwrap();
        assert_eq!(m.read_u64(8).unwrap(), 0x1234);
        m.write_u64((1 << 30) + (2 << 20) - 8, 7).unwrap();
        assert!(m.write_u64((1 << 30) + (2 << 20) - 4, 7).is_err());
        assert!(m.read_u64((4 << 20) - 4).is_err());
        assert!(m.read_u64(u64::MAX - 3).is_err());
        assert!(m.read_u64s(0, u64::MAX / 4).is_err());
        assert!(m.read_u64s(0, 1 << 19).is_ok());
        // A range spanning the gap between two regions is refused.
        assert!(m.read(4 << 20, &mut [0u8; 1]).is_err());
    }

    #[test]
    fn discard_zeroes_and_stays_inside() {
        let m = GuestMemory::new(&[(1 << 30, 2 << 20, Thp::On)]).unwrap();
        m.write_u64(1 << 30, 99).unwrap();
        m.discard(1 << 30, 100).unwrap();
        assert_eq!(m.read_u64(1 << 30).unwrap(), 0);
        assert!(m.discard(1 << 30, (2 << 20) + 1).is_err());
    }
}
