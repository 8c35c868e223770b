//! Unit tests of the vm environment against real KVM: faults, exits, pinning, counters.

//! Exits the workload image never produces, provoked with hand-assembled guest code on
//! real KVM (needs read-write /dev/kvm, like tests/vm.rs); pinning.
use std::collections::BTreeSet;

use super::*;
use crate::env::affinity::observe;

fn run_code(code: &[u8], patch: impl Fn(&GuestMemory)) -> Result<(), RunFailure> {
    let host = HostKvm::open().unwrap_or_else(|e| panic!("these tests need KVM: {e}"));
    let mut m = Machine::new(&host, VmOptions::default(), 0, 0, 1).unwrap();
    m.mem.write(IMAGE_BASE, code).unwrap();
    patch(&m.mem);
    let dog = Watchdog::new(None).unwrap();
    let cb = control_block(WL_START, [0; PARAM_COUNT], 0, (0, 0));
    m.run(&cb, None, &dog, Duration::from_secs(10)).unwrap()
}

fn crash(code: &[u8], patch: impl Fn(&GuestMemory)) -> String {
    match run_code(code, patch) {
        Err(RunFailure::Crashed(d)) => d,
        other => panic!("expected a crash, got {other:?}"),
    }
}

const JMP_SELF: [u8; 2] = [0xeb, 0xfe];

#[test]
fn out_to_another_port_is_a_crash_naming_port_and_rip() {
    // mov al, 1; out 0x80, al
    let d = crash(&[&[0xb0, 1, 0xe6, 0x80][..], &JMP_SELF].concat(), |_| {});
    assert!(d.contains("port 0x80"), "{d}");
    assert!(d.contains("RIP 0x400004"), "{d}");
}

#[test]
fn a_one_byte_doorbell_is_a_crash() {
    // mov dx, 0x510; mov al, 0; out dx, al
    let code = [&[0x66, 0xba, 0x10, 0x05, 0xb0, 0, 0xee][..], &JMP_SELF].concat();
    let d = crash(&code, |_| {});
    assert!(d.contains("1-byte out"), "{d}");
}

#[test]
fn a_request_outside_low_user_memory_is_a_crash() {
    for addr in [0x1000u32, PAGE_TABLE_BASE as u32, 0xffff_fff8] {
        // mov dx, 0x510; mov eax, addr; out dx, eax
        let mut code = vec![0x66, 0xba, 0x10, 0x05, 0xb8];
        code.extend_from_slice(&addr.to_le_bytes());
        code.push(0xef);
        code.extend_from_slice(&JMP_SELF);
        let d = crash(&code, |_| {});
        assert!(d.contains("request address"), "{d}");
        assert!(d.contains(&format!("{addr:#x}")), "{d}");
    }
}

#[test]
fn hlt_at_ring3_is_a_general_protection_fault() {
    let d = crash(&[0xf4], |_| {});
    assert!(d.contains("#GP"), "{d}");
    assert!(d.contains("RIP 0x400000"), "{d}");
}

#[test]
fn a_fault_with_no_usable_idt_is_a_triple_fault() {
    // ud2, with every IDT gate cleared: #UD → #NP → #DF → shutdown.
    let d = crash(&[0x0f, 0x0b], |m| {
        m.write(layout::IDT_ADDR, &[0u8; 512]).unwrap()
    });
    assert!(d.contains("triple fault"), "{d}");
    assert!(d.contains("RIP"), "{d}");
}

fn spec(scratch: &std::path::Path, cpu: Option<usize>) -> InstanceSpec {
    InstanceSpec {
        work_size: 16 * 1024,
        disk_size: 0,
        scratch: scratch.to_path_buf(),
        deadline: Duration::from_secs(60),
        thp: true,
        cpu,
        threads: 1,
        thread_cpus: Vec::new(),
    }
}

/// About 0.2 s of cpu.int in the guest: long enough to watch the vCPU thread.
fn long_cpu_int() -> Invocation {
    Invocation {
        name: "cpu.int",
        workload: WL_CPU_INT,
        params: crate::workload::params(&[16 * 1024, 50_000, 7, 1]),
        flags: 0,
    }
}

#[test]
fn a_pinned_vm_runs_the_guest_on_its_cpu_and_gives_the_thread_back() {
    if let Err(why) = Vm::probe() {
        panic!("these tests need KVM: {why}");
    }
    // On a thread of its own, whose affinity the test then owns.
    std::thread::spawn(|| {
        let pid = std::process::id() as i32;
        let tid = nix::unistd::gettid().as_raw();
        let before = affinity::current_thread_cpus().unwrap();
        let t = tempfile::tempdir().unwrap();
        // Every CPU in turn, so a thread that merely happened to be there fails.
        for &cpu in &before {
            let mut vm = Vm::new("vm", VmOptions::default());
            vm.start(&spec(t.path(), Some(cpu))).unwrap();
            assert_eq!(vm.facts()["cpu"], cpu.to_string());
            assert_eq!(affinity::current_thread_cpus().unwrap(), before);
            // The watchdog keeps off the CPU (when there is another one to be on).
            let dog = &vm.instance.as_ref().unwrap().watchdog;
            let t0 = Instant::now();
            while dog.tid() == 0 && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let dog_cpus = observe::placement(pid, dog.tid()).unwrap().allowed;
            assert_eq!(dog_cpus.contains(&cpu), before.len() == 1, "{dog_cpus:?}");

            let (run, seen) = observe::sample_while(pid, tid, || vm.invoke(&long_cpu_int()));
            let run = run.unwrap();
            for k in [
                interference::STEAL_TICKS,
                interference::RUN_DELAY_NS,
                interference::NIVCSW,
                "vm_exits.total",
            ] {
                assert!(run.counters.contains_key(k), "{k} in {:?}", run.counters);
            }
            // The thread was pinned to the CPU once, for the bulk of the invocation, and
            // was on that CPU throughout; before and after it had its own affinity.
            let only: BTreeSet<usize> = [cpu].into();
            assert!(
                seen.iter()
                    .all(|p| p.allowed == only || p.allowed == before),
                "{seen:?}"
            );
            let first = seen.iter().position(|p| p.allowed == only);
            let first = first.unwrap_or_else(|| panic!("never pinned: {seen:?}"));
            let last = seen.iter().rposition(|p| p.allowed == only).unwrap();
            assert!(
                last - first + 1 >= 20,
                "pinned for {} samples",
                last - first + 1
            );
            // (The first pinned sample may catch the mask set but the move not yet done.)
            assert!(
                seen[first..=last].iter().all(|p| p.allowed == only)
                    && seen[first + 1..=last].iter().all(|p| p.on == cpu),
                "CPU {cpu}: {seen:?}"
            );
            assert_eq!(affinity::current_thread_cpus().unwrap(), before);
            // A pinned start-up measurement, and the thread is given back after it too.
            assert!(vm.measure_start(&spec(t.path(), Some(cpu))).unwrap() > 0);
            assert_eq!(affinity::current_thread_cpus().unwrap(), before);
            vm.stop().unwrap();
        }
        // Unpinned: the thread's affinity is never touched.
        let mut vm = Vm::new("vm", VmOptions::default());
        vm.start(&spec(t.path(), None)).unwrap();
        assert_eq!(vm.facts()["cpu"], "none");
        let (run, seen) = observe::sample_while(pid, tid, || vm.invoke(&long_cpu_int()));
        run.unwrap();
        assert!(seen.iter().all(|p| p.allowed == before), "{seen:?}");
    })
    .join()
    .unwrap();
}

#[test]
fn a_competitor_on_the_vcpus_cpu_shows_in_its_counters() {
    if let Err(why) = Vm::probe() {
        panic!("these tests need KVM: {why}");
    }
    let t = tempfile::tempdir().unwrap();
    let cpu = *affinity::current_thread_cpus().unwrap().last().unwrap();
    std::thread::spawn(move || {
        let mut vm = Vm::new("vm", VmOptions::default());
        vm.start(&spec(t.path(), Some(cpu))).unwrap();
        let run = {
            let _busy = observe::compete_on(cpu);
            vm.invoke(&long_cpu_int()).unwrap()
        };
        eprintln!(
            "vCPU thread sharing CPU {cpu} with a spinner: {:?}",
            run.counters
        );
        // The vCPU thread shared its CPU with a spinning thread: it waited for a good
        // part of the ~0.2 s and was preempted, guest code or not.
        let c = &run.counters;
        assert!(c[interference::RUN_DELAY_NS] > 20_000_000, "{c:?}");
        assert!(c[interference::NIVCSW] > 0, "{c:?}");
    })
    .join()
    .unwrap();
}

#[test]
fn an_impossible_cpu_is_refused_at_start() {
    if let Err(why) = Vm::probe() {
        panic!("these tests need KVM: {why}");
    }
    let t = tempfile::tempdir().unwrap();
    let mut vm = Vm::new("vm", VmOptions::default());
    let err = vm
        .start(&spec(t.path(), Some(nix::sched::CpuSet::count())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pinning the vCPU thread to CPU"), "{err}");
    assert!(vm.instance.is_none());
}

#[test]
fn the_environment_is_send() {
    fn send<T: Send>() {}
    send::<Vm>();
}
