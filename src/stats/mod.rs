//! Statistics over samples: pure functions, no IO, no plotting.

pub mod bootstrap;
pub mod outliers;
pub mod paired;
pub mod summary;
pub mod verdict;
