//! The time-stamp counter on the host: reading it, and its frequency, calibrated against
//! `CLOCK_MONOTONIC` so that cycles measured inside the image convert to time.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

/// Read the TSC, serialised like the image's own timer (`lfence; rdtsc`).
pub fn now() -> u64 {
    // SAFETY: lfence and rdtsc have no preconditions on x86-64 user space.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        std::arch::x86_64::_rdtsc()
    }
}

/// The TSC frequency in Hz, measured against `CLOCK_MONOTONIC` over `window`.
/// Takes the median of five windows so one preemption cannot skew it.
pub fn calibrate(window: Duration) -> f64 {
    let mut estimates: Vec<f64> = (0..5)
        .map(|_| {
            let (c0, t0) = (now(), Instant::now());
            while t0.elapsed() < window {
                std::hint::spin_loop();
            }
            let (c1, dt) = (now(), t0.elapsed());
            (c1 - c0) as f64 / dt.as_secs_f64()
        })
        .collect();
    estimates.sort_by(f64::total_cmp);
    estimates[2]
}

/// Convert cycles to nanoseconds at `hz`.
pub fn cycles_to_ns(cycles: u64, hz: f64) -> f64 {
    cycles as f64 * 1e9 / hz
}
