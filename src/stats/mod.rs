//! Statistics over numbers: pure functions, no IO, no plotting, no knowledge of result
//! files (numbers in, numbers out). The methods are described in `docs/METHODOLOGY.md`.

pub mod bootstrap;
pub mod outliers;
pub mod paired;
pub mod sequential;
pub mod summary;
pub mod verdict;

pub use paired::Better;
