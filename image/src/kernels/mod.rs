//! The workload kernels, one module per workload. Each `run` reads its parameters from the
//! control block, times its steady-state region with `rt::rdtsc`, and leaves a checksum that
//! the harness verifies against an independent computation (`src/workload/`).

pub mod cpu_fp;
pub mod cpu_int;
pub mod io_rand;
pub mod io_seq;
pub mod mem_latency;
pub mod mem_random;
pub mod mem_stream;
pub mod mem_touch;
pub mod sys_call;
