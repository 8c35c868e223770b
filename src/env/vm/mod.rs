//! The vm environment: a minimal VMM on KVM that boots straight into the workload image at
//! guest ring 3 (docs/ARCHITECTURE.md, "The guest runs the image in ring 3"): one VM, one vCPU, guest memory identity-mapped at the
//! same addresses as natively, hostcalls over port IO served from a raw disk file.
//!
//! Files mirror KVM's objects: `kvm` (the system fd and host facts), `memory` (guest memory),
//! `layout` (GDT/IDT/TSS and page tables), `vcpu` (registers, run loop, exits),
//! `hostcall` (the device: validation and service), `watchdog` (deadlines).
//!
//! Pinning (`InstanceSpec::cpu`). The vCPU has no thread of its own: `KVM_RUN` runs on the
//! thread that calls `invoke`, the harness's. For a pinned vm that thread moves onto the CPU
//! for each invocation and back to its previous affinity after
//! ([`affinity::pin_current_thread`]): the move happens before the control block is written
//! and the vCPU reset, the move back after the last `KVM_RUN` (the one that completes the
//! final `out`), so every `KVM_RUN` of the instance, and all guest code, runs on that CPU,
//! while the harness's own work between invocations runs wherever the harness may. The
//! watchdog thread keeps off the CPU for good. `measure_start` is pinned the same way, from
//! before `KVM_CREATE_VM` to the end.
//!
//! Why not a dedicated vCPU thread pinned for good: every invocation would then cost two
//! cross-thread wake-ups (a command, an answer) instead of three `sched_*affinity` calls
//! of a few µs, the vCPU would have to be created and run on that thread (KVM wants vcpu
//! ioctls from one thread), and the watchdog, the errors and `Send` would all have to cross
//! a channel. Pinning the calling thread keeps today's single-threaded run loop. Its cost,
//! outside the timed region (the image's own TSC reads) and outside `wall_ns`, measured on
//! the 2-vCPU development VM (`affinity::tests`, medians): 4.7 µs for the three calls when
//! the thread may stay on the CPU between invocations, 34-44 µs when it lives on another
//! CPU and so migrates there and back each time.

pub mod cpuid;
pub mod hostcall;
pub mod kvm;
pub mod layout;
pub mod memory;
pub mod vcpu;
mod vcpus;
pub mod watchdog;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use isobench_abi::*;
use kvm_ioctls::VmFd;

use super::process::check_status;
use super::{affinity, interference};
use super::{EnvError, EnvKind, Environment, InstanceSpec, Invocation, RawRun};
use crate::image;
use hostcall::GuestBounds;
use kvm::{HostKvm, KvmError};
use layout::{PageTables, PAGE_TABLE_LIMIT};
use memory::{GuestMemory, MemoryError};
use vcpu::{RunFailure, Vcpu, VcpuError};
use watchdog::Watchdog;

pub use crate::plan::{GuestPageSize, Thp, VmOptions};
pub use kvm::{detect_flavour, host_is_nested, tsc_khz, KvmFlavour};

/// Why building or running the VM failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Kvm(#[from] KvmError),
    #[error("KVM_CREATE_VM failed: {0} (too many VMs, or the KVM module is unusable)")]
    CreateVm(#[source] kvm_ioctls::Error),
    #[error("working memory of {size} bytes exceeds the layout's maximum of {WORK_MAX_SIZE} bytes: lower the working-set size")]
    WorkTooLarge { size: u64 },
    #[error(
        "the workload image needs {size} bytes, more than the {IMAGE_MAX_SIZE} the layout leaves"
    )]
    ImageTooLarge { size: u64 },
    #[error("guest memory: {0}")]
    Memory(#[from] MemoryError),
    #[error("guest page tables: {0}")]
    Layout(#[from] layout::LayoutError),
    #[error("vCPU setup: {0}")]
    Vcpu(#[from] VcpuError),
    #[error("creating the scratch disk {path} failed: {source} (is the scratch directory writable, with {size} bytes free?)")]
    Disk {
        path: PathBuf,
        size: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the watchdog thread failed: {0}")]
    Watchdog(#[source] std::io::Error),
    #[error("pinning the vCPU thread to CPU {cpu} failed: {source} (that CPU is outside the CPUs this process may use: taskset, or the cgroup cpuset isobench runs in; pick another --cpu)")]
    Pin {
        cpu: usize,
        #[source]
        source: nix::errno::Errno,
    },
}

/// Pin the calling thread, the one that runs `KVM_RUN`, to `cpu` until the guard drops.
fn pin(cpu: Option<usize>) -> Result<Option<affinity::Pinned>, VmError> {
    cpu.map(|cpu| affinity::pin_current_thread(cpu).map_err(|source| VmError::Pin { cpu, source }))
        .transpose()
}

/// One VM with its memory and vCPU. Field order is drop order: the vCPU and VM fds close
/// before the guest memory is unmapped.
struct Machine {
    vcpu: Vcpu,
    /// vCPUs 1.. for invocations on several threads (`InstanceSpec::threads`).
    extra: Vec<Vcpu>,
    _vm: VmFd,
    mem: GuestMemory,
    bounds: GuestBounds,
}

impl Machine {
    /// KVM_CREATE_VM through the vCPU ready at the image's entry.
    fn new(
        host: &HostKvm,
        opts: VmOptions,
        work_size: u64,
        disk_size: u64,
        vcpus: u32,
    ) -> Result<Machine, VmError> {
        if work_size > WORK_MAX_SIZE {
            return Err(VmError::WorkTooLarge { size: work_size });
        }
        if image::IMAGE_MEM_SIZE > IMAGE_MAX_SIZE {
            return Err(VmError::ImageTooLarge {
                size: image::IMAGE_MEM_SIZE,
            });
        }
        let tables = PageTables::build(
            opts.guest_page,
            &layout::standard_mappings(opts.guest_page, WORK_BASE, work_size),
            PAGE_TABLE_BASE,
            PAGE_TABLE_LIMIT,
        )?;
        let vm = host.kvm.create_vm().map_err(VmError::CreateVm)?;
        // THP applies to the working memory, as natively; the low region (image, stack,
        // control, records, tables) uses small host pages like the native runner's mappings,
        // which also keeps start-up free of huge-page zeroing and compaction stalls.
        let mut regions = vec![(0, LOW_END, Thp::Off)];
        if work_size > 0 {
            regions.push((WORK_BASE, work_size, opts.thp));
        }
        let mem = GuestMemory::new(&regions)?;
        mem.register(&vm)?;
        mem.write(IMAGE_BASE, image::IMAGE)?;
        let gdt: Vec<u8> = layout::gdt().iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.write(layout::GDT_ADDR, &gdt)?;
        let idt: Vec<u8> = layout::idt().iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.write(layout::IDT_ADDR, &idt)?;
        mem.write(layout::TSS_ADDR, &layout::tss())?;
        mem.write(layout::FAULT_STUBS_ADDR, &layout::fault_stubs())?;
        mem.write(PAGE_TABLE_BASE, &tables.to_bytes())?;
        let guest = cpuid::guest_cpu(&host.kvm, &host.cpuid, opts.vm_max_isa);
        let vcpu = Vcpu::new(&vm, 0, &guest.cpuid, guest.xcr0)?;
        let extra = (1..vcpus.max(1) as u64)
            .map(|id| Vcpu::new(&vm, id, &guest.cpuid, guest.xcr0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Machine {
            vcpu,
            extra,
            _vm: vm,
            mem,
            bounds: GuestBounds {
                user_low: (layout::USER_LOW_START, layout::USER_LOW_END),
                work: (WORK_BASE, WORK_BASE + work_size),
                disk_size,
            },
        })
    }

    /// Write a fresh control block, reset the vCPU and run to `HC_DONE`.
    fn run(
        &mut self,
        cb: &ControlBlock,
        disk: Option<&File>,
        dog: &Watchdog,
        deadline: Duration,
    ) -> Result<Result<(), RunFailure>, VmError> {
        self.mem.write_control(CONTROL_ADDR, cb)?;
        self.vcpu.reset_for_entry()?;
        let _armed = dog.arm(deadline);
        Ok(self.vcpu.run_until_done(&self.mem, &self.bounds, disk, dog))
    }
}

/// The raw disk file in the scratch dir, removed when dropped.
struct Disk {
    file: File,
    path: PathBuf,
}

impl Disk {
    fn create(path: PathBuf, size: u64) -> Result<Disk, VmError> {
        let err = |source| VmError::Disk {
            path: path.clone(),
            size,
            source,
        };
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(err)?;
        let disk = Disk { file, path };
        disk.file.set_len(size).map_err(|source| VmError::Disk {
            path: disk.path.clone(),
            size,
            source,
        })?;
        Ok(disk)
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A started VM. Field order: the machine goes before the disk file is removed.
struct Instance {
    machine: Machine,
    disk: Option<Disk>,
    spec: InstanceSpec,
    watchdog: Watchdog,
    /// The interference counters of the thread that runs `KVM_RUN` (the one that invokes).
    interference: interference::Reader,
    /// One watchdog per extra vCPU thread (`--threads`).
    extra_dogs: Vec<Watchdog>,
}

/// The vm environment.
pub struct Vm {
    label: String,
    options: VmOptions,
    host: Option<HostKvm>,
    instance: Option<Instance>,
    tsc_khz: Option<u32>,
    /// The CPU the vCPU thread of the last `start` runs on.
    cpu: Option<usize>,
}

impl Vm {
    /// A vm environment labelled `label` (normally `vm`), built with `options`.
    pub fn new(label: &str, options: VmOptions) -> Vm {
        Vm {
            label: label.to_string(),
            options,
            host: None,
            instance: None,
            tsc_khz: None,
            cpu: None,
        }
    }

    /// Why the vm environment cannot run on this host (`Err(reason)`), or `Ok(())`.
    pub fn probe() -> Result<(), String> {
        kvm::probe()
    }

    pub fn options(&self) -> VmOptions {
        self.options
    }

    fn error(&self, op: &str, e: VmError) -> EnvError {
        match e {
            VmError::Kvm(
                k @ (KvmError::Missing | KvmError::Permission | KvmError::ApiVersion { .. }),
            ) => EnvError::Unavailable {
                env: self.label.clone(),
                reason: k.to_string(),
            },
            e => EnvError::setup(&self.label, op, e),
        }
    }

    fn host(&mut self) -> Result<&HostKvm, EnvError> {
        if self.host.is_none() {
            let h = HostKvm::open().map_err(|e| self.error("opening KVM", e.into()))?;
            self.host = Some(h);
        }
        self.host
            .as_ref()
            .ok_or_else(|| EnvError::setup(&self.label, "opening KVM", "no KVM handle"))
    }

    fn failure(&self, workload: &str, f: RunFailure, deadline: Duration) -> EnvError {
        match f {
            RunFailure::Crashed(detail) => EnvError::Crashed {
                env: self.label.clone(),
                workload: workload.to_string(),
                detail,
            },
            RunFailure::Deadline => EnvError::Deadline {
                env: self.label.clone(),
                workload: workload.to_string(),
                deadline,
            },
            RunFailure::Kvm(e) => EnvError::Crashed {
                env: self.label.clone(),
                workload: workload.to_string(),
                detail: format!("KVM_RUN failed: {e}"),
            },
        }
    }
}

fn control_block(
    workload: u32,
    params: [u64; PARAM_COUNT],
    flags: u64,
    spec: (u64, u64),
) -> ControlBlock {
    let mut cb = ControlBlock::new(MODE_PORTIO, workload);
    cb.params = params;
    cb.flags = flags;
    cb.work_size = spec.0;
    cb.disk_size = spec.1;
    cb
}

impl Environment for Vm {
    fn label(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> EnvKind {
        EnvKind::Vm
    }

    fn start(&mut self, spec: &InstanceSpec) -> Result<(), EnvError> {
        self.stop()?;
        self.cpu = spec.cpu;
        if let Some(cpu) = spec.cpu {
            // Refuse a CPU this thread cannot move to now, not at the first invocation.
            affinity::check_cpu(cpu).map_err(|why| {
                EnvError::setup(
                    &self.label,
                    format!("pinning the vCPU thread to CPU {cpu}"),
                    why,
                )
            })?;
            drop(pin(Some(cpu)).map_err(|e| self.error("starting the VM", e))?);
        }
        let opts = self.options;
        let label = self.label.clone();
        let host = self.host()?;
        let build = || -> Result<Instance, VmError> {
            let machine = Machine::new(host, opts, spec.work_size, spec.disk_size, spec.threads)?;
            let disk = if spec.disk_size > 0 {
                Some(Disk::create(
                    spec.scratch.join(format!("{label}.disk")),
                    spec.disk_size,
                )?)
            } else {
                None
            };
            let watchdog = Watchdog::new(spec.cpu).map_err(VmError::Watchdog)?;
            let extra_dogs = (1..spec.threads.max(1) as usize)
                .map(|t| Watchdog::new(super::threads::thread_cpu(spec, t)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(VmError::Watchdog)?;
            Ok(Instance {
                extra_dogs,
                machine,
                disk,
                spec: spec.clone(),
                watchdog,
                interference: interference::Reader::for_current_thread(spec.cpu),
            })
        };
        let inst = build().map_err(|e| self.error("starting the VM", e))?;
        if self.tsc_khz.is_none() {
            self.tsc_khz = inst.machine.vcpu.tsc_khz();
        }
        self.instance = Some(inst);
        Ok(())
    }

    fn invoke(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        // On the instance's CPU from before the vCPU is reset to after the last KVM_RUN (the
        // module doc, "Pinning"); the guard restores this thread's affinity on every path.
        let cpu = self.instance.as_ref().and_then(|i| i.spec.cpu);
        let pinned = pin(cpu).map_err(|e| self.error("running an invocation", e))?;
        let threads =
            (self.instance.as_ref()).map_or(1, |i| super::threads::threads_for(&i.spec, inv));
        if threads > 1 {
            let r = self.invoke_threads(inv);
            drop(pinned);
            return r;
        }
        let Some(inst) = self.instance.as_mut() else {
            return Err(EnvError::setup(
                &self.label,
                "invoking a workload",
                "the environment was not started",
            ));
        };
        let cb = control_block(
            inv.workload,
            inv.params,
            inv.flags,
            (inst.spec.work_size, inst.spec.disk_size),
        );
        let deadline = inst.spec.deadline;
        // Interference is read on this thread, pinned, just outside `wall_ns`.
        let before = inst.interference.read();
        let t0 = Instant::now();
        let ran = inst.machine.run(
            &cb,
            inst.disk.as_ref().map(|d| &d.file),
            &inst.watchdog,
            deadline,
        );
        let wall_ns = t0.elapsed().as_nanos() as u64;
        let after = inst.interference.read();
        let ran = match ran {
            Ok(r) => r,
            Err(e) => {
                self.instance = None;
                return Err(self.error("running an invocation", e));
            }
        };
        if let Err(f) = ran {
            // A crashed or runaway guest: tear it down; `start` builds a new one.
            self.instance = None;
            return Err(self.failure(inv.name, f, deadline));
        }
        let done = inst.machine.vcpu.complete_pending_io();
        drop(pinned);
        let out = inst.machine.mem.read_control(CONTROL_ADDR);
        let (out, records) = match (done, out) {
            (Ok(()), Ok(out)) => {
                let n = out.records.min(RECORD_CAPACITY);
                match inst.machine.mem.read_u64s(RECORD_ADDR, n) {
                    Ok(r) => (out, r),
                    Err(e) => {
                        self.instance = None;
                        return Err(self.error("reading the records", e.into()));
                    }
                }
            }
            (Err(e), _) => {
                self.instance = None;
                return Err(self.error("completing the invocation", e.into()));
            }
            (_, Err(e)) => {
                self.instance = None;
                return Err(self.error("reading the control block", e.into()));
            }
        };
        if let Err(mut e) = check_status(&self.label, inv, &out) {
            if let (EnvError::Status { meaning, .. }, Some(r)) =
                (&mut e, &inst.machine.vcpu.last_rejected)
            {
                meaning.push_str(&format!("; the VMM {r}"));
            }
            return Err(e);
        }
        Ok(RawRun {
            status: out.status,
            checksum: out.checksum,
            cycles: out.cycles,
            results: out.results,
            records,
            hostcalls: out.hostcalls,
            wall_ns,
            counters: {
                let mut c = inst.machine.vcpu.counters.to_map();
                before.add_delta(&after, &mut c);
                c
            },
            threads: Vec::new(),
        })
    }

    fn measure_start(&mut self, spec: &InstanceSpec) -> Result<u64, EnvError> {
        let opts = self.options;
        let dog = Watchdog::new(spec.cpu)
            .map_err(|e| self.error("measuring start-up", VmError::Watchdog(e)))?;
        // Pinned before the clock starts: the VM is created, and its vCPU runs, on the CPU.
        let _pinned = pin(spec.cpu).map_err(|e| self.error("measuring start-up", e))?;
        let host = self.host()?;
        let cb = control_block(WL_START, [0; PARAM_COUNT], 0, (0, 0));
        // Launch = KVM_CREATE_VM; everything from there to the image's first instruction
        // (memory, tables, image copy, vCPU setup) is inside the measurement. Opening
        // /dev/kvm and reading the supported CPUID are host-level and cached.
        let t_launch = crate::tsc::now();
        let ran = Machine::new(host, opts, 0, 0, 1).and_then(|mut m| {
            let r = m.run(&cb, None, &dog, spec.deadline)?;
            Ok((m, r))
        });
        let (m, r) = ran.map_err(|e| self.error("measuring start-up", e))?;
        r.map_err(|f| self.failure("start", f, spec.deadline))?;
        let out = m
            .mem
            .read_control(CONTROL_ADDR)
            .map_err(|e| self.error("measuring start-up", e.into()))?;
        let inv = Invocation {
            name: "start",
            workload: WL_START,
            params: [0; PARAM_COUNT],
            flags: 0,
        };
        check_status(&self.label, &inv, &out)?;
        Ok(out.results[0].saturating_sub(t_launch))
    }

    fn facts(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::from([
            ("guest_page".to_string(), self.options.guest_page.name().to_string()),
            ("thp".to_string(), self.options.thp.name().to_string()),
            ("thp_host_policy".to_string(), memory::host_thp_policy()),
            ("kvm_flavour".to_string(), detect_flavour().name().to_string()),
            (
                "host_nested".to_string(),
                if host_is_nested() { "yes" } else { "no" }.to_string(),
            ),
            (
                "guest".to_string(),
                "minimal: long mode set by the VMM, image entered at CPL 3 with IOPL 3, no guest kernel"
                    .to_string(),
            ),
            ("vcpus".to_string(), "1".to_string()),
            ("cpu".to_string(), super::cpu_fact(self.cpu)),
            (
                "hostcall".to_string(),
                format!("port IO {HOSTCALL_PORT:#x}, raw disk file served with pread/pwrite"),
            ),
        ]);
        if let Some(khz) = self.tsc_khz {
            f.insert("tsc_khz".to_string(), khz.to_string());
        }
        if let Some(host) = &self.host {
            let g = cpuid::guest_cpu(&host.kvm, &host.cpuid, self.options.vm_max_isa);
            f.insert(
                "guest_cpu".to_string(),
                format!(
                    "CPUID from KVM_GET_SUPPORTED_CPUID via KVM_SET_CPUID2; XCR0 {} (ISA tiers {}{})",
                    g.xcr0
                        .map_or("not set (no XSAVE offered)".to_string(), |x| format!(
                            "{x:#x} via KVM_SET_XCRS, CR4.OSXSAVE"
                        )),
                    crate::workload::isa::list(&g.tiers),
                    if self.options.vm_host_isa {
                        "; --vm-host-isa: the host's tiers offered"
                    } else {
                        ""
                    }
                ),
            );
        }
        f
    }

    fn stop(&mut self) -> Result<(), EnvError> {
        // Dropping the instance closes the vCPU and VM, unmaps guest memory, removes the disk
        // file and joins the watchdog.
        self.instance = None;
        Ok(())
    }

    fn isa_tiers(&mut self) -> Result<Vec<crate::workload::isa::Isa>, EnvError> {
        let (max, host_isa) = (self.options.vm_max_isa, self.options.vm_host_isa);
        let host = self.host()?;
        let kvm = cpuid::guest_cpu(&host.kvm, &host.cpuid, max).tiers;
        Ok(if host_isa {
            crate::workload::isa::Isa::host_tiers()
                .into_iter()
                .filter(|t| max.is_none_or(|m| *t <= m))
                .collect()
        } else {
            kvm
        })
    }

    fn loaded_image(&self) -> Option<std::io::Result<Vec<u8>>> {
        let inst = self.instance.as_ref()?;
        let mut buf = vec![0u8; image::IMAGE.len()];
        Some(
            inst.machine
                .mem
                .read(IMAGE_BASE, &mut buf)
                .map(|()| buf)
                .map_err(std::io::Error::other),
        )
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
