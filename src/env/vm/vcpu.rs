//! The one vCPU: its register setup for a ring-3 entry into the image (docs/KVM.md values),
//! the run loop that serves hostcalls until `HC_DONE`, exit accounting, and turning every
//! other exit (fault, triple fault, MMIO, emulation failure, deadline) into a clear failure
//! that names the exit and the guest registers.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::File;

use isobench_abi::*;
use kvm_bindings::{
    kvm_dtable, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcr, kvm_xcrs, CpuId,
    Msrs,
};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};

use super::hostcall::{self, GuestBounds, Hostcall, STATUS_OFFSET};
use super::layout::*;
use super::memory::GuestMemory;
use super::watchdog::Watchdog;

/// `IA32_TIME_STAMP_COUNTER`: written so the guest TSC starts equal to the host's.
const MSR_IA32_TSC: u32 = 0x10;

/// Why configuring the vCPU failed.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    #[error("KVM_CREATE_VCPU failed: {0} (the host may limit vCPUs per VM)")]
    Create(#[source] kvm_ioctls::Error),
    #[error("{op} failed: {source}")]
    Ioctl {
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("building the MSR list failed: {0}")]
    MsrList(String),
    #[error("completing the last port-IO exit returned {0} instead of EINTR")]
    Complete(String),
}

fn ioctl(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuError {
    move |source| VcpuError::Ioctl { op, source }
}

/// How one run ended, when it did not end with `HC_DONE`.
#[derive(Debug)]
pub enum RunFailure {
    /// The guest crashed or did something the VMM does not serve; the text names the exit and
    /// the guest registers.
    Crashed(String),
    /// The watchdog's deadline passed.
    Deadline,
    /// `KVM_RUN` itself failed.
    Kvm(kvm_ioctls::Error),
}

/// VM exits of one invocation, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCounters {
    /// Port-IO exits (hostcalls, including the final `HC_DONE`).
    pub io: u64,
    pub mmio: u64,
    /// `KVM_RUN` interrupted by a signal (watchdog kicks, or other host signals).
    pub intr: u64,
    /// Anything else (shutdown, internal error, hlt, ...).
    pub other: u64,
    /// Hostcall requests rejected by validation.
    pub rejected: u64,
}

impl ExitCounters {
    pub fn total(&self) -> u64 {
        self.io + self.mmio + self.intr + self.other
    }

    /// As `RawRun::counters` entries.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("vm_exits.io".to_string(), self.io),
            ("vm_exits.mmio".to_string(), self.mmio),
            ("vm_exits.intr".to_string(), self.intr),
            ("vm_exits.other".to_string(), self.other),
            ("vm_exits.total".to_string(), self.total()),
            ("vm_hostcalls.rejected".to_string(), self.rejected),
        ])
    }
}

/// An exit copied out of `kvm_run`, so the vCPU can be queried while handling it.
enum Exit {
    IoOut {
        port: u16,
        data: [u8; 8],
        len: usize,
    },
    IoIn {
        port: u16,
        len: usize,
    },
    Mmio {
        addr: u64,
        len: usize,
        write: bool,
    },
    Shutdown,
    Internal,
    FailEntry(u64),
    Hlt,
    Interrupted,
    Other(String),
}

pub struct Vcpu {
    fd: VcpuFd,
    pub counters: ExitCounters,
    /// The last rejected hostcall, for the error when the image then reports a failure.
    pub last_rejected: Option<String>,
}

fn user_code() -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_CODE_SEL | 3,
        type_: 0xb,
        present: 1,
        dpl: 3,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

fn user_data() -> kvm_segment {
    kvm_segment {
        selector: USER_DATA_SEL | 3,
        type_: 3,
        db: 1,
        l: 0,
        ..user_code()
    }
}

fn task_register() -> kvm_segment {
    kvm_segment {
        base: TSS_ADDR,
        limit: (TSS_SIZE - 1) as u32,
        selector: TSS_SEL,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

impl Vcpu {
    /// Create vCPU `id`: CPUID first (before sregs, docs/KVM.md), then the long-mode state, then the
    /// TSC set to the host's so guest timestamps compare with host ones.
    /// With `xcr0`, CR4.OSXSAVE is set and XCR0 enabled through `KVM_SET_XCRS` (after the
    /// CPUID that offers XSAVE), so the image can use AVX and AVX-512 at ring 3
    /// (docs/KVM.md, "ISA tiers in the guest").
    pub fn new(vm: &VmFd, id: u64, cpuid: &CpuId, xcr0: Option<u64>) -> Result<Vcpu, VcpuError> {
        let fd = vm.create_vcpu(id).map_err(VcpuError::Create)?;
        fd.set_cpuid2(cpuid).map_err(ioctl("KVM_SET_CPUID2"))?;
        let mut v = Vcpu {
            fd,
            counters: ExitCounters::default(),
            last_rejected: None,
        };
        v.set_long_mode(xcr0.is_some())?;
        if let Some(value) = xcr0 {
            let mut xcrs = kvm_xcrs {
                nr_xcrs: 1,
                ..Default::default()
            };
            xcrs.xcrs[0] = kvm_xcr {
                xcr: 0,
                reserved: 0,
                value,
            };
            v.fd.set_xcrs(&xcrs).map_err(ioctl("KVM_SET_XCRS (XCR0)"))?;
        }
        let msrs = Msrs::from_entries(&[kvm_msr_entry {
            index: MSR_IA32_TSC,
            data: crate::tsc::now(),
            ..Default::default()
        }])
        .map_err(|e| VcpuError::MsrList(format!("{e:?}")))?;
        v.fd.set_msrs(&msrs).map_err(ioctl("KVM_SET_MSRS (TSC)"))?;
        Ok(v)
    }

    /// The guest TSC frequency KVM reports (`KVM_GET_TSC_KHZ`), if it knows one.
    pub fn tsc_khz(&self) -> Option<u32> {
        self.fd.get_tsc_khz().ok()
    }

    fn set_long_mode(&mut self, osxsave: bool) -> Result<(), VcpuError> {
        let mut s: kvm_sregs = self.fd.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?;
        s.cs = user_code();
        let data = user_data();
        (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
        s.tr = task_register();
        s.gdt = kvm_dtable {
            base: GDT_ADDR,
            limit: (GDT_SIZE - 1) as u16,
            padding: [0; 3],
        };
        s.idt = kvm_dtable {
            base: IDT_ADDR,
            limit: (IDT_VECTORS * 16 - 1) as u16,
            padding: [0; 3],
        };
        s.cr0 = CR0;
        s.cr3 = PAGE_TABLE_BASE;
        s.cr4 = if osxsave { CR4 | CR4_OSXSAVE } else { CR4 };
        s.efer = EFER;
        self.fd.set_sregs(&s).map_err(ioctl("KVM_SET_SREGS"))
    }

    /// Fresh state for one entry at `IMAGE_BASE` with `rdi = CONTROL_ADDR`: general registers
    /// and FPU/SSE state. The system registers (segments, GDT/IDT/TR, CR*, EFER) were set when
    /// the vCPU was created and ring-3 code cannot change them; a fault, the only way into
    /// ring 0, ends the VM.
    pub fn reset_for_entry(&mut self) -> Result<(), VcpuError> {
        self.reset_for_thread(0)
    }

    /// [`Vcpu::reset_for_entry`] for thread `t` of an invocation on several vCPUs: its own
    /// control block (`thread_control_addr(t)`) and its own slice of the guest stack.
    pub fn reset_for_thread(&mut self, t: u64) -> Result<(), VcpuError> {
        let regs = kvm_regs {
            rip: IMAGE_BASE,
            rsp: STACK_TOP - t * THREAD_STACK_SIZE - 8,
            rdi: thread_control_addr(t),
            rflags: RFLAGS,
            ..Default::default()
        };
        self.fd.set_regs(&regs).map_err(ioctl("KVM_SET_REGS"))?;
        let fpu = kvm_fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        };
        self.fd.set_fpu(&fpu).map_err(ioctl("KVM_SET_FPU"))?;
        self.counters = ExitCounters::default();
        self.last_rejected = None;
        Ok(())
    }

    /// Let KVM finish the pending `out` of the last exit without running guest code
    /// (`immediate_exit`), so the next `reset_for_entry` starts from consistent state.
    pub fn complete_pending_io(&mut self) -> Result<(), VcpuError> {
        self.fd.set_kvm_immediate_exit(1);
        let r = match self.fd.run() {
            Err(e) if e.errno() == libc::EINTR => Ok(()),
            Err(e) => Err(VcpuError::Complete(e.to_string())),
            Ok(exit) => Err(VcpuError::Complete(format!("{exit:?}"))),
        };
        self.fd.set_kvm_immediate_exit(0);
        r
    }

    fn next_exit(&mut self) -> Result<Exit, kvm_ioctls::Error> {
        Ok(match self.fd.run() {
            Ok(VcpuExit::IoOut(port, d)) => {
                let mut data = [0u8; 8];
                let len = d.len().min(8);
                data[..len].copy_from_slice(&d[..len]);
                Exit::IoOut {
                    port,
                    data,
                    len: d.len(),
                }
            }
            Ok(VcpuExit::IoIn(port, d)) => Exit::IoIn { port, len: d.len() },
            Ok(VcpuExit::MmioRead(addr, d)) => Exit::Mmio {
                addr,
                len: d.len(),
                write: false,
            },
            Ok(VcpuExit::MmioWrite(addr, d)) => Exit::Mmio {
                addr,
                len: d.len(),
                write: true,
            },
            Ok(VcpuExit::Shutdown) => Exit::Shutdown,
            Ok(VcpuExit::InternalError) => Exit::Internal,
            Ok(VcpuExit::FailEntry(reason, _)) => Exit::FailEntry(reason),
            Ok(VcpuExit::Hlt) => Exit::Hlt,
            Ok(VcpuExit::Intr) => Exit::Interrupted,
            Ok(other) => Exit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Exit::Interrupted,
            Err(e) => return Err(e),
        })
    }

    /// Run the guest until it signals `HC_DONE`, serving hostcalls on the way.
    pub fn run_until_done(
        &mut self,
        mem: &GuestMemory,
        bounds: &GuestBounds,
        disk: Option<&File>,
        dog: &Watchdog,
    ) -> Result<(), RunFailure> {
        loop {
            let exit = self.next_exit().map_err(RunFailure::Kvm)?;
            if dog.expired() {
                return Err(RunFailure::Deadline);
            }
            match exit {
                Exit::IoOut { port, data, len } => {
                    self.counters.io += 1;
                    if port == FAULT_PORT {
                        return Err(RunFailure::Crashed(self.describe_fault(mem, &data)));
                    }
                    let data = &data[..len.min(8)];
                    let req_addr = hostcall::decode_doorbell(port, data, bounds)
                        .map_err(|e| RunFailure::Crashed(self.describe(&e.to_string())))?;
                    let mut req = [0u8; HOSTCALL_REQUEST_SIZE];
                    mem.read(req_addr, &mut req)
                        .map_err(|e| RunFailure::Crashed(self.describe(&e.to_string())))?;
                    let status = match hostcall::decode_request(&req, bounds) {
                        Ok(Hostcall::Done) => return Ok(()),
                        Ok(call) => hostcall::serve(&call, mem, disk),
                        Err(e) => {
                            self.counters.rejected += 1;
                            let status = e.status().unwrap_or(-HC_ERR_IO);
                            self.last_rejected =
                                Some(self.describe(&format!("rejected hostcall: {e}")));
                            status
                        }
                    };
                    mem.write_u64(req_addr + STATUS_OFFSET, status as u64)
                        .map_err(|e| RunFailure::Crashed(self.describe(&e.to_string())))?;
                }
                Exit::IoIn { port, len } => {
                    self.counters.io += 1;
                    return Err(RunFailure::Crashed(self.describe(&format!(
                        "unexpected {len}-byte `in` from I/O port {port:#x} (the VMM serves no input ports)"
                    ))));
                }
                Exit::Mmio { addr, len, write } => {
                    self.counters.mmio += 1;
                    return Err(RunFailure::Crashed(self.describe(&format!(
                        "MMIO exit: {len}-byte {} of guest-physical {addr:#x}, which no guest memory backs",
                        if write { "write" } else { "read" }
                    ))));
                }
                Exit::Interrupted => self.counters.intr += 1,
                other => {
                    self.counters.other += 1;
                    let reason = match other {
                        Exit::Shutdown => {
                            "triple fault (KVM_EXIT_SHUTDOWN): a fault the guest could not deliver"
                                .to_string()
                        }
                        Exit::Internal => self.internal_error(),
                        Exit::FailEntry(r) => {
                            format!("VM entry failed (KVM_EXIT_FAIL_ENTRY, hardware reason {r:#x})")
                        }
                        Exit::Hlt => "hlt exit (the image never halts)".to_string(),
                        Exit::Other(s) => format!("unexpected exit {s}"),
                        _ => "unexpected exit".to_string(),
                    };
                    return Err(RunFailure::Crashed(self.describe(&reason)));
                }
            }
        }
    }

    fn internal_error(&mut self) -> String {
        let run = self.fd.get_kvm_run();
        // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so `internal` is the union member
        // the kernel filled; it is plain integers.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let meaning = match internal.suberror {
            1 => "emulation failure",
            2 => "simultaneous exceptions",
            3 => "event delivery failed",
            4 => "unexpected exit reason",
            _ => "unknown",
        };
        let n = (internal.ndata as usize).min(internal.data.len());
        format!(
            "KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror {} = {meaning}, data {:x?})",
            internal.suberror,
            &internal.data[..n]
        )
    }

    /// `reason`, followed by the guest registers that locate it.
    fn describe(&self, reason: &str) -> String {
        let regs = match self.fd.get_regs() {
            Ok(r) => format!(
                "guest RIP {:#x}, RSP {:#x}, RAX {:#x}, RDX {:#x}, RDI {:#x}, RFLAGS {:#x}",
                r.rip, r.rsp, r.rax, r.rdx, r.rdi, r.rflags
            ),
            Err(e) => format!("guest registers unavailable ({e})"),
        };
        let sregs = match self.fd.get_sregs() {
            Ok(s) => format!(", CPL {}, CR2 {:#x}", s.cs.selector & 3, s.cr2),
            Err(_) => String::new(),
        };
        format!("{reason} at {regs}{sregs}")
    }

    /// A guest exception reported by a fault stub: decode the frame the CPU pushed.
    fn describe_fault(&self, mem: &GuestMemory, data: &[u8; 8]) -> String {
        let vector = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as u64;
        let name = vector_name(vector);
        let (Ok(regs), Ok(sregs)) = (self.fd.get_regs(), self.fd.get_sregs()) else {
            return format!("guest exception {vector} ({name}); registers unavailable");
        };
        let mut frame_at = regs.rsp;
        let code = if has_error_code(vector) {
            frame_at += 8;
            mem.read_u64(regs.rsp).ok()
        } else {
            None
        };
        let word = |i: u64| mem.read_u64(frame_at + 8 * i).ok();
        let (Some(rip), Some(cs), Some(rflags), Some(rsp)) = (word(0), word(1), word(2), word(3))
        else {
            return format!(
                "guest exception {vector} ({name}); its frame at {:#x} is unreadable",
                regs.rsp
            );
        };
        let mut s = format!(
            "guest exception {vector} ({name}) at guest RIP {rip:#x}, RSP {rsp:#x}, RFLAGS {rflags:#x}, CPL {}",
            cs & 3
        );
        if let Some(c) = code {
            s += &format!(", error code {c:#x}");
            if vector == 14 {
                s += &format!(
                    " ({} of {:#x}: {}, {} mode{})",
                    if c & 2 != 0 { "write" } else { "read" },
                    sregs.cr2,
                    if c & 1 != 0 {
                        "protection violation"
                    } else {
                        "page not present"
                    },
                    if c & 4 != 0 { "user" } else { "supervisor" },
                    if c & 16 != 0 {
                        ", instruction fetch"
                    } else {
                        ""
                    }
                );
            }
        }
        s
    }
}
