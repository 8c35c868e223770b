//! The embedded workload image: its bytes, size, load address and SHA-256.

include!(concat!(env!("OUT_DIR"), "/image_meta.rs"));

/// The flat image, loaded at [`isobench_abi::IMAGE_BASE`].
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/isobench-image.bin"));
