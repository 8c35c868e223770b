//! Statistics over numbers: pure functions, no IO, no plotting, no knowledge of result
//! files (numbers in, numbers out). The methods are described in `docs/METHODOLOGY.md`.

pub mod bootstrap;
pub mod meta;
pub mod outliers;
pub mod paired;
pub mod sequential;
pub mod student;
pub mod summary;
pub mod verdict;

pub use paired::Better;

/// Synthetic series for the statistics' unit tests.
#[cfg(test)]
pub(crate) mod series {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A seeded AR(1) series x_t = φ x_{t−1} + e_t with uniform innovations.
    pub fn ar1(n: usize, phi: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                x = phi * x + rng.gen_range(-1.0..1.0);
                x
            })
            .collect()
    }
}
