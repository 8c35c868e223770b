//! `--threads N`: the workloads that split their work over N threads (`cpu.int`, `cpu.fp`,
//! `mem.stream`), each thread's share of it, and the checks and metrics of a run on N
//! threads (docs/METHODOLOGY.md, "Threads"). Every other workload runs on one thread.

use isobench_abi::{MAX_THREADS, WL_CPU_FP, WL_CPU_INT, WL_MEM_STREAM};

use super::{check, cpu_int, mem_stream, Better, ChecksumMismatch, Expected, Metric, Prepared};
use crate::image::RawRun;

/// The workloads that run on every thread of `--threads`, by name.
pub const THREADED: [&str; 3] = ["cpu.int", "cpu.fp", "mem.stream"];

/// Whether workload id `id` splits its work over threads (the image refuses threads for
/// the others).
pub fn is_threaded(id: u32) -> bool {
    matches!(id, WL_CPU_INT | WL_CPU_FP | WL_MEM_STREAM)
}

/// Check `--threads N`: 1 ..= [`MAX_THREADS`].
pub fn check_count(n: u32) -> Result<(), String> {
    if n == 0 || n as u64 > MAX_THREADS {
        return Err(format!(
            "--threads {n}: give a number of threads from 1 to {MAX_THREADS} (at most the CPUs isobench may use)"
        ));
    }
    Ok(())
}

/// One thread's share of `p` when it runs on `n` threads, so that the threads together do
/// the work of one invocation (rounded up to whole units): `cpu.int` hashes `passes / n`
/// passes per repetition, `cpu.fp` multiplies `reps / n` times, `mem.stream` streams arrays
/// of `elements / n` (a multiple of 8). Its `work_bytes` are what the n threads map in all
/// (each share rounded up to 2 MiB). `p` unchanged for one thread or another workload.
pub fn share(p: &Prepared, n: u32) -> Prepared {
    let n64 = n as u64;
    if n <= 1 || !is_threaded(p.invocation.workload) {
        return p.clone();
    }
    let mut s = p.clone();
    let params = &mut s.invocation.params;
    match p.invocation.workload {
        WL_CPU_INT => {
            let [bytes, passes, seed, reps, ..] = *params;
            params[1] = passes.div_ceil(n64).max(1);
            s.expected = Expected::Exact(cpu_int::reference(bytes, params[1] * reps, seed));
        }
        WL_CPU_FP => params[1] = params[1].div_ceil(n64).max(1),
        _ => {
            let [elements, ntimes, ..] = *params;
            let per = elements.div_ceil(n64).next_multiple_of(8);
            params[0] = per;
            s.expected = Expected::Exact(mem_stream::reference(per, ntimes));
            s.work_bytes = 3 * per * 8;
        }
    }
    s.work_bytes = s.work_bytes.next_multiple_of(2 << 20) * n64;
    s
}

/// Every thread's checksum against the share's reference, and every thread's results equal
/// to thread 0's (which `interpret` checked): each thread did its share in full.
pub fn check_threads(p: &Prepared, raw: &RawRun) -> Result<(), ChecksumMismatch> {
    for (t, th) in raw.threads.iter().enumerate() {
        check(
            &format!("{} (thread {t})", p.invocation.name),
            p.expected,
            th.checksum,
        )?;
        if th.results != raw.threads[0].results {
            return Err(ChecksumMismatch {
                workload: format!("{} (thread {t})", p.invocation.name),
                got: format!("results {:?}", th.results),
                expected: format!("thread 0's results {:?}", raw.threads[0].results),
            });
        }
    }
    Ok(())
}

/// The metrics of a run on `n` threads from those `interpret` computed for one share over the
/// joint repetitions: a throughput (higher is better) counts the work of all `n` shares.
pub fn scale(metrics: &mut [Metric], n: usize) {
    if n > 1 {
        for m in metrics.iter_mut().filter(|m| m.better == Better::Higher) {
            m.value *= n as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Profile, Sizing, Span};
    use super::*;

    #[test]
    fn shares_split_the_work_and_carry_their_own_reference() {
        let sizing = Sizing {
            profile: Profile::Quick,
            span: Span::Short,
        };
        let whole = (cpu_int::WORKLOAD.prepare)(sizing, 5);
        let half = share(&whole, 2);
        assert_eq!(half.invocation.params[1] * 2, whole.invocation.params[1]);
        assert_ne!(half.expected, whole.expected);
        let stream = (mem_stream::WORKLOAD.prepare)(sizing, 5);
        let s = share(&stream, 2);
        assert_eq!(s.invocation.params[0] % 8, 0);
        assert!(s.invocation.params[0] * 2 >= stream.invocation.params[0]);
        assert!(s.work_bytes >= 2 * 24 * s.invocation.params[0]);
        assert_eq!(share(&stream, 1).invocation, stream.invocation);
        assert!(check_count(0).is_err() && check_count(17).is_err() && check_count(2).is_ok());
    }
}
