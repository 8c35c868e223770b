//! Statistics over samples: pure functions, no IO, no plotting.

pub mod summary;
