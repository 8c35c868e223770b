//! isobench: measures what isolation costs, by running one byte-identical workload image
//! natively, in a container it builds itself and in a minimal KVM guest it boots itself.
#![deny(unsafe_code)]

pub mod analysis;
pub mod baseline;
pub mod claims;
pub mod cli;
pub mod compare;
pub mod env;
pub mod export;
pub mod fleet;
pub mod host;
pub mod image;
pub mod measure;
pub mod plan;
pub mod report;
pub mod results;
pub mod scratch;
pub mod session;
pub mod stats;
pub mod tsc;
pub mod workload;
