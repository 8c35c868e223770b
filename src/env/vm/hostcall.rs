//! The hostcall device: decoding and validating what the guest hands the VMM (pure
//! functions over bytes, property-tested), and serving a validated request on the host.
//!
//! Everything the guest writes is hostile until checked: the doorbell's port and size, the
//! request address, the version, the op, every buffer (inside user-accessible guest memory,
//! no overflow) and every disk range (inside the disk). Only a `Hostcall` that passed all of
//! that reaches `serve`.

use std::fs::File;
use std::os::fd::AsRawFd;

use isobench_abi::*;

use super::memory::GuestMemory;

/// Byte offset of `HostcallRequest::status` (where the VMM writes the result).
pub const STATUS_OFFSET: u64 = 40;
/// Host page size: the granule of `HC_DISCARD`.
pub const HOST_PAGE: u64 = 4096;

/// What guest memory and disk a request may refer to. Ranges are half-open `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestBounds {
    /// The user-accessible low region (image, control, hostcall, stack, records).
    pub user_low: (u64, u64),
    /// The working memory (empty when `start == end`).
    pub work: (u64, u64),
    /// Bytes of disk (0: no disk).
    pub disk_size: u64,
}

/// A guest range `[addr, addr + len)`, already validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRange {
    pub addr: u64,
    pub len: u64,
}

/// A validated hostcall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostcall {
    Null,
    DiskRead {
        offset: u64,
        buf: GuestRange,
    },
    DiskWrite {
        offset: u64,
        buf: GuestRange,
    },
    DiskFlush,
    /// Drop `[offset, offset + len)` (len 0: to the end) from the host page cache.
    DiskDropCache {
        offset: u64,
        len: u64,
    },
    Discard(GuestRange),
    Done,
}

/// Why a doorbell or request was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostcallError {
    #[error("the guest wrote to I/O port {port:#x}, which is not the hostcall port {HOSTCALL_PORT:#x} (the image and the VMM disagree on the ABI)")]
    Port { port: u16 },
    #[error("the hostcall doorbell was a {size}-byte out; it must be `out dx, eax` (4 bytes)")]
    Size { size: usize },
    #[error("the hostcall request address {addr:#x} is not inside user low guest memory [{start:#x}, {end:#x}) with room for the {HOSTCALL_REQUEST_SIZE}-byte request, 8-byte aligned")]
    RequestAddress { addr: u64, start: u64, end: u64 },
    #[error("hostcall request version {version}, expected {HOSTCALL_VERSION} (image and VMM built from different ABIs)")]
    Version { version: u16 },
    #[error("hostcall request field `reserved` is {value:#x}, must be 0")]
    Reserved { value: u32 },
    #[error("unknown hostcall op {op} (known: 0..{HC_OP_COUNT})")]
    Op { op: u16 },
    #[error("{op}: buffer [{addr:#x}, +{len:#x}) is not inside user guest memory (low [{low_start:#x}, {low_end:#x}) or work [{work_start:#x}, {work_end:#x}))")]
    Buffer {
        op: &'static str,
        addr: u64,
        len: u64,
        low_start: u64,
        low_end: u64,
        work_start: u64,
        work_end: u64,
    },
    #[error("{op}: disk range [{offset:#x}, +{len:#x}) is not inside the {disk_size}-byte disk")]
    DiskRange {
        op: &'static str,
        offset: u64,
        len: u64,
        disk_size: u64,
    },
    #[error("HC_DISCARD: range [{addr:#x}, +{len:#x}) must start page-aligned and lie inside the working memory [{work_start:#x}, {work_end:#x})")]
    Discard {
        addr: u64,
        len: u64,
        work_start: u64,
        work_end: u64,
    },
}

impl HostcallError {
    /// The negative status to write back into the request, or `None` when the request itself
    /// could not be located (bad port, size or request address): then the invocation fails.
    pub fn status(&self) -> Option<i64> {
        match self {
            HostcallError::Port { .. }
            | HostcallError::Size { .. }
            | HostcallError::RequestAddress { .. } => None,
            HostcallError::Version { .. } | HostcallError::Reserved { .. } => Some(-HC_ERR_VERSION),
            HostcallError::Op { .. } => Some(-HC_ERR_OP),
            HostcallError::Buffer { .. } | HostcallError::Discard { .. } => Some(-HC_ERR_ADDRESS),
            HostcallError::DiskRange { .. } => Some(-HC_ERR_OFFSET),
        }
    }
}

/// The name of an op, for errors.
pub fn op_name(op: u16) -> &'static str {
    match op {
        HC_NULL => "HC_NULL",
        HC_DISK_READ => "HC_DISK_READ",
        HC_DISK_WRITE => "HC_DISK_WRITE",
        HC_DISK_FLUSH => "HC_DISK_FLUSH",
        HC_DISK_DROP_CACHE => "HC_DISK_DROP_CACHE",
        HC_DISCARD => "HC_DISCARD",
        HC_DONE => "HC_DONE",
        _ => "unknown op",
    }
}

/// `[addr, addr + len)` lies inside `[start, end)`, computed without overflow.
fn inside(addr: u64, len: u64, (start, end): (u64, u64)) -> bool {
    addr >= start && addr <= end && len <= end - addr
}

/// Decode the doorbell (`out dx, eax`): check the port and size, return the request address.
pub fn decode_doorbell(port: u16, data: &[u8], bounds: &GuestBounds) -> Result<u64, HostcallError> {
    if port != HOSTCALL_PORT {
        return Err(HostcallError::Port { port });
    }
    let bytes: [u8; 4] = data
        .try_into()
        .map_err(|_| HostcallError::Size { size: data.len() })?;
    let addr = u32::from_le_bytes(bytes) as u64;
    if !addr.is_multiple_of(8) || !inside(addr, HOSTCALL_REQUEST_SIZE as u64, bounds.user_low) {
        return Err(HostcallError::RequestAddress {
            addr,
            start: bounds.user_low.0,
            end: bounds.user_low.1,
        });
    }
    Ok(addr)
}

fn u64_at(b: &[u8; HOSTCALL_REQUEST_SIZE], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

/// Decode and validate a request read from guest memory.
pub fn decode_request(
    bytes: &[u8; HOSTCALL_REQUEST_SIZE],
    bounds: &GuestBounds,
) -> Result<Hostcall, HostcallError> {
    let version = u16::from_le_bytes([bytes[0], bytes[1]]);
    let op = u16::from_le_bytes([bytes[2], bytes[3]]);
    let reserved = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let args = [8, 16, 24, 32].map(|off| u64_at(bytes, off));
    if version != HOSTCALL_VERSION {
        return Err(HostcallError::Version { version });
    }
    if reserved != 0 {
        return Err(HostcallError::Reserved { value: reserved });
    }
    let buffer = |op: &'static str, addr: u64, len: u64| {
        if inside(addr, len, bounds.user_low) || inside(addr, len, bounds.work) {
            Ok(GuestRange { addr, len })
        } else {
            Err(HostcallError::Buffer {
                op,
                addr,
                len,
                low_start: bounds.user_low.0,
                low_end: bounds.user_low.1,
                work_start: bounds.work.0,
                work_end: bounds.work.1,
            })
        }
    };
    let disk = |op: &'static str, offset: u64, len: u64| {
        if inside(offset, len, (0, bounds.disk_size)) {
            Ok(offset)
        } else {
            Err(HostcallError::DiskRange {
                op,
                offset,
                len,
                disk_size: bounds.disk_size,
            })
        }
    };
    match op {
        HC_NULL => Ok(Hostcall::Null),
        HC_DISK_READ | HC_DISK_WRITE => {
            let name = op_name(op);
            let buf = buffer(name, args[1], args[2])?;
            let offset = disk(name, args[0], args[2])?;
            Ok(if op == HC_DISK_READ {
                Hostcall::DiskRead { offset, buf }
            } else {
                Hostcall::DiskWrite { offset, buf }
            })
        }
        HC_DISK_FLUSH => Ok(Hostcall::DiskFlush),
        HC_DISK_DROP_CACHE => {
            let (offset, len) = (args[0], args[1]);
            // Length 0 means "to the end", as for posix_fadvise.
            let checked = if len == 0 {
                bounds.disk_size.saturating_sub(offset)
            } else {
                len
            };
            disk(op_name(op), offset, checked)?;
            Ok(Hostcall::DiskDropCache { offset, len })
        }
        HC_DISCARD => {
            let (addr, len) = (args[0], args[1]);
            if addr % HOST_PAGE != 0 || !inside(addr, len, bounds.work) {
                return Err(HostcallError::Discard {
                    addr,
                    len,
                    work_start: bounds.work.0,
                    work_end: bounds.work.1,
                });
            }
            Ok(Hostcall::Discard(GuestRange { addr, len }))
        }
        HC_DONE => Ok(Hostcall::Done),
        _ => Err(HostcallError::Op { op }),
    }
}

/// Perform a validated hostcall on the host; returns the status for the request (`>= 0`, or
/// a negative errno). `disk` is `None` when the instance has no disk (then disk ops fail
/// with `-EBADF`, as natively with no disk fd).
pub fn serve(call: &Hostcall, mem: &GuestMemory, disk: Option<&File>) -> i64 {
    let neg = |e: std::io::Error| -(e.raw_os_error().unwrap_or(libc::EIO) as i64);
    let disk_fd = || disk.map(|f| f.as_raw_fd()).ok_or(-(libc::EBADF as i64));
    match *call {
        Hostcall::Null | Hostcall::Done => 0,
        Hostcall::DiskRead { offset, buf } => match disk_fd() {
            Ok(fd) => mem
                .pread_into(fd, buf.addr, buf.len, offset)
                .map_or_else(neg, |n| n as i64),
            Err(e) => e,
        },
        Hostcall::DiskWrite { offset, buf } => match disk_fd() {
            Ok(fd) => mem
                .pwrite_from(fd, buf.addr, buf.len, offset)
                .map_or_else(neg, |n| n as i64),
            Err(e) => e,
        },
        Hostcall::DiskFlush => match disk {
            Some(f) => f.sync_all().map_or_else(neg, |()| 0),
            None => -(libc::EBADF as i64),
        },
        Hostcall::DiskDropCache { offset, len } => match disk_fd() {
            Ok(fd) => {
                match nix::fcntl::posix_fadvise(
                    fd,
                    offset as libc::off_t,
                    len as libc::off_t,
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
                ) {
                    Ok(()) => 0,
                    Err(e) => -(e as i64),
                }
            }
            Err(e) => e,
        },
        Hostcall::Discard(r) => mem.discard(r.addr, r.len).map_or_else(neg, |()| 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOUNDS: GuestBounds = GuestBounds {
        user_low: (IMAGE_BASE, PAGE_TABLE_BASE),
        work: (WORK_BASE, WORK_BASE + (16 << 20)),
        disk_size: 1 << 20,
    };

    fn request(version: u16, op: u16, args: [u64; 4]) -> [u8; HOSTCALL_REQUEST_SIZE] {
        let mut b = [0u8; HOSTCALL_REQUEST_SIZE];
        b[0..2].copy_from_slice(&version.to_le_bytes());
        b[2..4].copy_from_slice(&op.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b[40..48].copy_from_slice(&(-1i64).to_le_bytes());
        b
    }

    #[test]
    fn layout_of_the_request_matches_the_abi() {
        assert_eq!(
            std::mem::size_of::<HostcallRequest>(),
            HOSTCALL_REQUEST_SIZE
        );
        assert_eq!(
            std::mem::offset_of!(HostcallRequest, status) as u64,
            STATUS_OFFSET
        );
        assert_eq!(std::mem::offset_of!(HostcallRequest, args), 8);
    }

    #[test]
    fn cache_drops_take_a_range_inside_the_disk() {
        let v = HOSTCALL_VERSION;
        let decode = |args| decode_request(&request(v, HC_DISK_DROP_CACHE, args), &BOUNDS);
        assert_eq!(
            decode([0, 0, 0, 0]),
            Ok(Hostcall::DiskDropCache { offset: 0, len: 0 })
        );
        assert_eq!(
            decode([4096, 8192, 0, 0]),
            Ok(Hostcall::DiskDropCache {
                offset: 4096,
                len: 8192
            })
        );
        // To the end of the disk, from inside it; nothing past it.
        assert!(decode([BOUNDS.disk_size - 4096, 0, 0, 0]).is_ok());
        assert!(matches!(
            decode([BOUNDS.disk_size - 4096, 8192, 0, 0]),
            Err(HostcallError::DiskRange { .. })
        ));
        assert!(matches!(
            decode([BOUNDS.disk_size + 4096, 0, 0, 0]),
            Err(HostcallError::DiskRange { .. })
        ));
        assert!(matches!(
            decode([u64::MAX, 2, 0, 0]),
            Err(HostcallError::DiskRange { .. })
        ));
    }

    #[test]
    fn valid_requests_decode() {
        let v = HOSTCALL_VERSION;
        assert_eq!(
            decode_request(&request(v, HC_NULL, [0; 4]), &BOUNDS),
            Ok(Hostcall::Null)
        );
        assert_eq!(
            decode_request(
                &request(v, HC_DISK_READ, [4096, WORK_BASE, 4096, 0]),
                &BOUNDS
            ),
            Ok(Hostcall::DiskRead {
                offset: 4096,
                buf: GuestRange {
                    addr: WORK_BASE,
                    len: 4096
                }
            })
        );
        // A buffer ending exactly at the end of the work region, disk range ending at its end.
        let end = BOUNDS.work.1 - 4096;
        assert!(decode_request(
            &request(v, HC_DISK_WRITE, [(1 << 20) - 4096, end, 4096, 0]),
            &BOUNDS
        )
        .is_ok());
        assert_eq!(
            decode_request(
                &request(v, HC_DISCARD, [WORK_BASE, 16 << 20, 0, 0]),
                &BOUNDS
            ),
            Ok(Hostcall::Discard(GuestRange {
                addr: WORK_BASE,
                len: 16 << 20
            }))
        );
        assert_eq!(
            decode_doorbell(
                HOSTCALL_PORT,
                &(HOSTCALL_ADDR as u32).to_le_bytes(),
                &BOUNDS
            ),
            Ok(HOSTCALL_ADDR)
        );
    }

    #[test]
    fn each_bad_field_is_rejected_with_its_status() {
        let v = HOSTCALL_VERSION;
        let cases: [(_, i64); 8] = [
            (request(v + 1, HC_NULL, [0; 4]), -HC_ERR_VERSION),
            (request(v, HC_OP_COUNT, [0; 4]), -HC_ERR_OP),
            (request(v, 0xffff, [0; 4]), -HC_ERR_OP),
            (
                request(v, HC_DISK_READ, [0, u64::MAX - 10, 4096, 0]),
                -HC_ERR_ADDRESS,
            ),
            (
                request(v, HC_DISK_READ, [0, BOUNDS.work.1 - 8, 16, 0]),
                -HC_ERR_ADDRESS,
            ),
            (
                request(v, HC_DISK_WRITE, [(1 << 20) - 8, WORK_BASE, 16, 0]),
                -HC_ERR_OFFSET,
            ),
            (
                request(v, HC_DISCARD, [WORK_BASE + 1, 4096, 0, 0]),
                -HC_ERR_ADDRESS,
            ),
            (
                request(v, HC_DISCARD, [IMAGE_BASE, 4096, 0, 0]),
                -HC_ERR_ADDRESS,
            ),
        ];
        for (req, status) in cases {
            let e = decode_request(&req, &BOUNDS).unwrap_err();
            assert_eq!(e.status(), Some(status), "{e}");
        }
        let mut reserved = request(v, HC_NULL, [0; 4]);
        reserved[4] = 1;
        assert_eq!(
            decode_request(&reserved, &BOUNDS).unwrap_err().status(),
            Some(-HC_ERR_VERSION)
        );
        // The page tables and the VMM's ring-0 structures are not user memory.
        let e = decode_request(
            &request(v, HC_DISK_READ, [0, PAGE_TABLE_BASE, 8, 0]),
            &BOUNDS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("HC_DISK_READ"), "{e}");
        assert!(decode_request(&request(v, HC_DISK_READ, [0, 0x1000, 8, 0]), &BOUNDS).is_err());
        // Doorbell: other ports, sizes and request addresses cannot be written back to.
        for (port, data) in [
            (0x80u16, vec![0u8; 4]),
            (HOSTCALL_PORT, vec![0u8; 1]),
            (HOSTCALL_PORT, 0x1000u32.to_le_bytes().to_vec()),
            (
                HOSTCALL_PORT,
                (HOSTCALL_ADDR as u32 + 4).to_le_bytes().to_vec(),
            ),
            (
                HOSTCALL_PORT,
                (PAGE_TABLE_BASE as u32 - 40).to_le_bytes().to_vec(),
            ),
        ] {
            let e = decode_doorbell(port, &data, &BOUNDS).unwrap_err();
            assert_eq!(e.status(), None, "{e}");
        }
    }

    fn bounds_strategy() -> impl Strategy<Value = GuestBounds> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(a, b, c, d, disk)| GuestBounds {
                user_low: (a.min(b), a.max(b)),
                work: (c.min(d), c.max(d)),
                disk_size: disk,
            })
    }

    fn contained(addr: u64, len: u64, (s, e): (u64, u64)) -> bool {
        (addr as u128) >= s as u128 && (addr as u128 + len as u128) <= e as u128
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn decode_never_accepts_out_of_range(
            bytes in proptest::array::uniform32(any::<u8>()),
            tail in proptest::array::uniform16(any::<u8>()),
            version_ok in any::<bool>(),
            op in 0u16..9,
            bounds in prop_oneof![Just(BOUNDS), bounds_strategy()],
        ) {
            let mut req = [0u8; HOSTCALL_REQUEST_SIZE];
            req[..32].copy_from_slice(&bytes);
            req[32..].copy_from_slice(&tail);
            if version_ok {
                req[0..2].copy_from_slice(&HOSTCALL_VERSION.to_le_bytes());
                req[4..8].fill(0);
                req[2..4].copy_from_slice(&op.to_le_bytes());
            }
            match decode_request(&req, &bounds) {
                Ok(Hostcall::DiskRead { offset, buf }) | Ok(Hostcall::DiskWrite { offset, buf }) => {
                    prop_assert!(contained(buf.addr, buf.len, bounds.user_low)
                        || contained(buf.addr, buf.len, bounds.work));
                    prop_assert!(contained(offset, buf.len, (0, bounds.disk_size)));
                }
                Ok(Hostcall::Discard(r)) => {
                    prop_assert!(contained(r.addr, r.len, bounds.work));
                    prop_assert_eq!(r.addr % HOST_PAGE, 0);
                }
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(e.status().is_some());
                    prop_assert!(e.status().unwrap() < 0);
                }
            }
        }

        #[test]
        fn small_buffers_near_the_edges(
            addr_off in -64i64..64, len in 0u64..128, disk_off in -64i64..64, end_edge in any::<bool>(),
        ) {
            let edge = if end_edge { BOUNDS.work.1 } else { BOUNDS.user_low.1 };
            let addr = edge.wrapping_add_signed(addr_off);
            let offset = BOUNDS.disk_size.wrapping_add_signed(disk_off);
            let req = request(HOSTCALL_VERSION, HC_DISK_READ, [offset, addr, len, 0]);
            let ok = decode_request(&req, &BOUNDS).is_ok();
            let expect = (contained(addr, len, BOUNDS.user_low) || contained(addr, len, BOUNDS.work))
                && contained(offset, len, (0, BOUNDS.disk_size));
            prop_assert_eq!(ok, expect);
        }

        #[test]
        fn doorbell_never_accepts_out_of_range(
            port in prop_oneof![Just(HOSTCALL_PORT), any::<u16>()],
            data in proptest::collection::vec(any::<u8>(), 0..9),
            bounds in prop_oneof![Just(BOUNDS), bounds_strategy()],
        ) {
            if let Ok(addr) = decode_doorbell(port, &data, &bounds) {
                prop_assert_eq!(port, HOSTCALL_PORT);
                prop_assert_eq!(data.len(), 4);
                prop_assert!(contained(addr, HOSTCALL_REQUEST_SIZE as u64, bounds.user_low));
                prop_assert_eq!(addr % 8, 0);
            }
        }
    }
}
