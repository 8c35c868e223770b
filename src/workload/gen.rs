//! The deterministic generators the references need, written again in plain Rust for the
//! harness (the image has its own copies in `image/src/kernels/mod.rs`): a reference that
//! shared the image's code could not catch a bug in it.

/// SplitMix64 (Steele, Lea, Flood 2014): advance `state` and return the next output.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Word `i` of the data pattern seeded by `seed`.
pub fn pattern_word(seed: u64, i: u64) -> u64 {
    let mut s = seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93);
    splitmix64(&mut s)
}

/// Mixed into the seed of the IO data's per-block stamps (the image's `STAMP`).
pub const STAMP: u64 = 0x2545_f491_4f6c_dd1d;

/// Word `i` of the IO workloads' disk data (docs/METHODOLOGY.md, "IO: the data"): word
/// `i mod 512` of a base block seeded `base_seed`, xor the stamp of block `i / 512` seeded
/// `stamp_seed`. The image makes a block as one base block xor one stamp.
pub fn disk_word(base_seed: u64, stamp_seed: u64, i: u64) -> u64 {
    let words = isobench_abi::DISK_BLOCK / 8;
    pattern_word(base_seed, i % words) ^ pattern_word(stamp_seed ^ STAMP, i / words)
}

/// The running hash the kernels fold their data into.
pub fn fold(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    h ^ (h >> 29)
}

/// A uniform integer in `0..bound` from one generator output (Lemire's multiply-shift).
pub fn below(r: u64, bound: u64) -> u64 {
    ((r as u128 * bound as u128) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_sequence() {
        // First outputs of SplitMix64 from state 0 (as in the reference C code by Vigna).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(splitmix64(&mut s), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn below_stays_in_range_and_reaches_both_ends() {
        assert_eq!(below(0, 10), 0);
        assert_eq!(below(u64::MAX, 10), 9);
        assert_eq!(below(1 << 63, 4), 2);
    }

    #[test]
    fn fold_depends_on_order() {
        assert_ne!(fold(fold(0, 1), 2), fold(fold(0, 2), 1));
    }
}
