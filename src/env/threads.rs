//! One invocation on several threads (`--threads N`), the part every environment shares: the
//! control block of each thread (its slice of the working memory and of the record buffer,
//! its stamps, the CPU it is to run on), and the threads' outputs joined into one
//! [`RawRun`] whose repetitions run from the first thread's start to the last one's end
//! (docs/METHODOLOGY.md, "Threads").

use isobench_abi::*;

use super::{EnvError, InstanceSpec, Invocation, RawRun};
use crate::image::ThreadRun;
use crate::workload::threads::is_threaded;

/// The threads `inv` runs on in an instance of `spec`: `spec.threads` for a workload that
/// splits its work (`cpu.int`, `cpu.fp`, `mem.stream`), one for every other.
pub fn threads_for(spec: &InstanceSpec, inv: &Invocation) -> u32 {
    if is_threaded(inv.workload) {
        spec.threads.max(1)
    } else {
        1
    }
}

/// The CPU thread `t` is to run on, if the instance is pinned.
pub fn thread_cpu(spec: &InstanceSpec, t: usize) -> Option<usize> {
    match t {
        0 => spec.cpu,
        _ => spec.thread_cpus.get(t).copied(),
    }
}

/// The control blocks of one invocation: one per thread (just the usual block for one).
/// `host_cpu` carries the CPU each thread is to pin itself to (`u64::MAX`: none); the thread
/// overwrites it with the CPU it ran on.
pub fn blocks(spec: &InstanceSpec, inv: &Invocation, mode: u32) -> Vec<ControlBlock> {
    let n = threads_for(spec, inv);
    // Each thread's working memory: an equal, 2 MiB-aligned slice (the session sizes the
    // instance's memory as threads × the share, each rounded up to 2 MiB).
    let stride = if n > 1 {
        (spec.work_size / n as u64) / (2 << 20) * (2 << 20)
    } else {
        spec.work_size
    };
    (0..n)
        .map(|t| {
            let mut cb = ControlBlock::new(mode, inv.workload);
            cb.params = inv.params;
            cb.flags = inv.flags;
            cb.work_size = stride;
            cb.work_addr = WORK_BASE + t as u64 * stride;
            cb.thread = t;
            cb.threads = n;
            if n > 1 {
                cb.record_addr = RECORD_ADDR + t as u64 * THREAD_RECORD_SIZE;
                cb.record_capacity = THREAD_RECORD_SIZE / 2 / 8;
                cb.stamp_addr = cb.record_addr + THREAD_RECORD_SIZE / 2;
                cb.stamp_capacity = THREAD_RECORD_SIZE / 2 / 8;
            }
            cb.host_cpu = thread_cpu(spec, t as usize).map_or(u64::MAX, |c| c as u64);
            cb
        })
        .collect()
}

/// What one thread left: its control block, its records and its stamps.
pub struct ThreadOutput {
    pub cb: ControlBlock,
    pub records: Vec<u64>,
    pub stamps: Vec<u64>,
}

/// Join the threads' outputs (all with `STATUS_OK`) into one run. Repetition j of the
/// joint run lasts from the first thread's start to the last thread's end: every thread
/// stamps when it leaves the barrier before repetition j and the barrier after it (which
/// opens when the last thread is done), so each thread's span covers the repetition on its
/// own clock, and the longest (the first thread to start) is the joint one. No TSCs of two
/// CPUs are compared: a guest's vCPUs may not agree on theirs.
pub fn join(
    env: &str,
    inv: &Invocation,
    blocks: &[ControlBlock],
    outs: Vec<ThreadOutput>,
    wall_ns: u64,
    counters: std::collections::BTreeMap<String, u64>,
) -> Result<RawRun, EnvError> {
    let bad = |detail: String| EnvError::Crashed {
        env: env.into(),
        workload: inv.name.into(),
        detail,
    };
    let reps = outs[0].records.len();
    let mut records = vec![0u64; reps];
    for (t, o) in outs.iter().enumerate() {
        if o.cb.ran != t as u64 + 1 {
            return Err(bad(format!(
                "thread {t} of {} never entered the image (its control block says ran = {})",
                outs.len(),
                o.cb.ran
            )));
        }
        let want = blocks[t].host_cpu;
        if want != u64::MAX && o.cb.host_cpu != want {
            return Err(bad(format!(
                "thread {t} ran on CPU {}, not on its CPU {want}: pinning it failed (that CPU is outside the CPUs the instance may use: --cpuset, taskset or the cgroup cpuset; use fewer --threads or another --cpu)",
                o.cb.host_cpu
            )));
        }
        if o.records.len() != reps || o.stamps.len() != 2 * reps {
            return Err(bad(format!(
                "thread {t} wrote {} records and {} stamps, thread 0 {reps} records (2 stamps each)",
                o.records.len(),
                o.stamps.len()
            )));
        }
    }
    for (j, r) in records.iter_mut().enumerate() {
        *r = outs
            .iter()
            .map(|o| o.stamps[2 * j + 1].saturating_sub(o.stamps[2 * j]))
            .max()
            .unwrap_or(0);
    }
    let first = outs[0].cb;
    Ok(RawRun {
        status: first.status,
        checksum: first.checksum,
        cycles: records.iter().sum(),
        results: first.results,
        records,
        hostcalls: outs.iter().map(|o| o.cb.hostcalls).sum(),
        wall_ns,
        counters,
        threads: outs
            .iter()
            .map(|o| ThreadRun {
                checksum: o.cb.checksum,
                results: o.cb.results,
                ran: o.cb.ran,
                host_cpu: (o.cb.host_cpu != u64::MAX).then_some(o.cb.host_cpu as usize),
                records: o.records.clone(),
                stamps: o.stamps.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(t: u64, stamps: Vec<u64>) -> ThreadOutput {
        let mut cb = ControlBlock::new(MODE_SYSCALL, WL_CPU_INT);
        cb.ran = t + 1;
        cb.checksum = 7;
        ThreadOutput {
            cb,
            records: vec![0; stamps.len() / 2],
            stamps,
        }
    }

    #[test]
    fn a_joint_repetition_is_the_longest_span_of_a_thread() {
        let inv = Invocation {
            name: "cpu.int",
            workload: WL_CPU_INT,
            params: [0; PARAM_COUNT],
            flags: 0,
        };
        let blocks = [ControlBlock::new(MODE_SYSCALL, WL_CPU_INT); 2];
        let run = join(
            "native",
            &inv,
            &blocks,
            // Thread 1's clock is 1000 cycles ahead: spans, not stamps, are compared.
            vec![
                out(0, vec![100, 250, 250, 390]),
                out(1, vec![1105, 1252, 1252, 1392]),
            ],
            0,
            Default::default(),
        )
        .unwrap();
        assert_eq!(run.records, vec![150, 140]);
        assert_eq!(run.cycles, 290);
        assert_eq!(run.threads.len(), 2);
        // A thread that never ran the image is an error, not a sample.
        let mut never = out(1, vec![110, 250, 305, 380]);
        never.cb.ran = 0;
        let err = join(
            "vm",
            &inv,
            &blocks,
            vec![out(0, vec![1, 2, 3, 4]), never],
            0,
            Default::default(),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("never entered the image"));
    }

    #[test]
    fn only_splitting_workloads_get_threads_and_memory_slices() {
        let spec = InstanceSpec {
            work_size: 8 << 20,
            disk_size: 0,
            scratch: "/nonexistent".into(),
            deadline: std::time::Duration::from_secs(1),
            thp: false,
            cpu: Some(1),
            threads: 2,
            thread_cpus: vec![1, 0],
        };
        let mut inv = Invocation {
            name: "mem.stream",
            workload: WL_MEM_STREAM,
            params: [0; PARAM_COUNT],
            flags: 0,
        };
        let b = blocks(&spec, &inv, MODE_SYSCALL);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[1].work_addr, b[1].work_size),
            (WORK_BASE + (4 << 20), 4 << 20)
        );
        assert_eq!((b[0].host_cpu, b[1].host_cpu), (1, 0));
        assert_eq!(b[1].record_addr, RECORD_ADDR + THREAD_RECORD_SIZE);
        inv.workload = WL_MEM_RANDOM;
        assert_eq!(blocks(&spec, &inv, MODE_SYSCALL).len(), 1);
    }
}
