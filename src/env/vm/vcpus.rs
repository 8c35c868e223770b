//! An invocation on several vCPUs (`--threads N`): vCPU t enters the image at CPL 3 with its
//! own control block and stack slice, on its own `KVM_RUN` thread pinned to its CPU (vCPU 0
//! on the invoking thread, as for one vCPU), each with its own watchdog. The threads meet at
//! the barrier in guest memory; no guest kernel is involved (docs/KVM.md, "Several vCPUs").
use std::time::Instant;

use isobench_abi::*;

use super::super::threads::{self as env_threads, ThreadOutput};
use super::*;

/// What one vCPU thread ended with: its run, and the host CPU its `KVM_RUN` thread was on.
type VcpuEnd = (Result<Result<(), RunFailure>, VmError>, Option<usize>);

/// The host CPU the calling thread runs on.
fn current_cpu() -> Option<usize> {
    nix::sched::sched_getcpu().ok()
}

/// Run vCPU `vcpu` to `HC_DONE` (reset for thread `t` first), armed with `dog`.
fn run_one(
    vcpu: &mut Vcpu,
    t: u64,
    mem: &GuestMemory,
    bounds: &GuestBounds,
    dog: &Watchdog,
    deadline: Duration,
) -> Result<Result<(), RunFailure>, VmError> {
    vcpu.reset_for_thread(t)?;
    let ran = {
        let _armed = dog.arm(deadline);
        vcpu.run_until_done(mem, bounds, None, dog)
    };
    match ran {
        Ok(()) => vcpu.complete_pending_io()?,
        // Release the other vCPUs from the barrier: they finish instead of spinning until
        // their deadline (a failed vCPU fails the invocation anyway).
        Err(_) => {
            let abort = SYNC_ADDR + std::mem::offset_of!(SyncBlock, abort) as u64;
            mem.write_u64(abort, 1)?;
        }
    }
    Ok(ran)
}

impl Vm {
    /// Run `inv` on the instance's `threads` vCPUs. The calling thread is pinned to vCPU 0's
    /// CPU already; a failure of any vCPU tears the instance down, like a failure of one.
    pub(super) fn invoke_threads(&mut self, inv: &Invocation) -> Result<RawRun, EnvError> {
        let Some(inst) = self.instance.as_mut() else {
            return Err(EnvError::setup(
                &self.label,
                "invoking a workload",
                "the environment was not started",
            ));
        };
        let spec = inst.spec.clone();
        let blocks = env_threads::blocks(&spec, inv, MODE_PORTIO);
        let n = blocks.len();
        let m = &mut inst.machine;
        let prepared = (|| -> Result<(), VmError> {
            for (t, cb) in blocks.iter().enumerate() {
                m.mem.write_control(thread_control_addr(t as u64), cb)?;
            }
            m.mem
                .write(SYNC_ADDR, &[0u8; std::mem::size_of::<SyncBlock>()])?;
            Ok(())
        })();
        if let Err(e) = prepared {
            self.instance = None;
            return Err(self.error("writing the control blocks", e));
        }
        if m.extra.len() + 1 < n {
            return Err(EnvError::setup(
                &self.label,
                "running an invocation on several vCPUs",
                format!(
                    "the VM has {} vCPU(s), the invocation asks for {n}",
                    m.extra.len() + 1
                ),
            ));
        }
        let deadline = spec.deadline;
        let before = inst.interference.read();
        let t0 = Instant::now();
        let (mem, bounds) = (&m.mem, &m.bounds);
        let dogs = &inst.extra_dogs;
        let watchdog = &inst.watchdog;
        let ends: Vec<VcpuEnd> = std::thread::scope(|scope| {
            let handles: Vec<_> = m
                .extra
                .iter_mut()
                .take(n - 1)
                .zip(dogs)
                .enumerate()
                .map(|(i, (vcpu, dog))| {
                    let t = i + 1;
                    let cpu = env_threads::thread_cpu(&spec, t);
                    std::thread::Builder::new()
                        .name(format!("isobench-vcpu{t}"))
                        .spawn_scoped(scope, move || -> VcpuEnd {
                            let _pinned = match pin(cpu) {
                                Ok(p) => p,
                                Err(e) => return (Err(e), None),
                            };
                            let ran = run_one(vcpu, t as u64, mem, bounds, dog, deadline);
                            (ran, current_cpu())
                        })
                })
                .collect();
            let first = run_one(&mut m.vcpu, 0, mem, bounds, watchdog, deadline);
            let mut ends = vec![(first, current_cpu())];
            for h in handles {
                ends.push(match h {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        (
                            Err(VmError::Watchdog(std::io::Error::other(
                                "a vCPU thread panicked",
                            ))),
                            None,
                        )
                    }),
                    Err(e) => (Err(VmError::Watchdog(e)), None),
                });
            }
            ends
        });
        let wall_ns = t0.elapsed().as_nanos() as u64;
        let after = inst.interference.read();
        let mut outs = Vec::new();
        let mut cpus = Vec::new();
        for (t, (end, cpu)) in ends.into_iter().enumerate() {
            match end {
                Ok(Ok(())) => cpus.push(cpu),
                Ok(Err(f)) => {
                    self.instance = None;
                    return Err(self.failure(&format!("{} (vCPU {t})", inv.name), f, deadline));
                }
                Err(e) => {
                    self.instance = None;
                    return Err(self.error(&format!("running vCPU {t}"), e));
                }
            }
        }
        let Some(inst) = self.instance.as_mut() else {
            unreachable!("the instance is kept while every vCPU succeeded")
        };
        let mem = &inst.machine.mem;
        for (t, cb) in blocks.iter().enumerate() {
            let read = || -> Result<ThreadOutput, MemoryError> {
                let mut out = mem.read_control(thread_control_addr(t as u64))?;
                // The CPU the vCPU's KVM_RUN thread ran on, as the native threads record it.
                out.host_cpu = cpus[t].map_or(u64::MAX, |c| c as u64);
                Ok(ThreadOutput {
                    records: mem.read_u64s(cb.record_addr, out.records.min(cb.record_capacity))?,
                    stamps: mem.read_u64s(cb.stamp_addr, out.stamps.min(cb.stamp_capacity))?,
                    cb: out,
                })
            };
            match read() {
                Ok(o) => {
                    check_status(&self.label, inv, &o.cb)?;
                    outs.push(o);
                }
                Err(e) => {
                    self.instance = None;
                    return Err(self.error("reading the control blocks", e.into()));
                }
            }
        }
        let mut counters = inst.machine.vcpu.counters.to_map();
        for v in &inst.machine.extra {
            for (k, c) in v.counters.to_map() {
                *counters.entry(k).or_insert(0) += c;
            }
        }
        before.add_delta(&after, &mut counters);
        env_threads::join(&self.label, inv, &blocks, outs, wall_ns, counters)
    }
}
