//! Builds the freestanding workload image (`image/`) with `$RUSTC` directly, flattens its
//! ELF into the bytes loaded at `IMAGE_BASE`, and hands them to the harness via `OUT_DIR`.
//!
//! Invoking rustc (not cargo) avoids a nested cargo's target-dir lock, workspace profile
//! inheritance and outer RUSTFLAGS leaking into the image (docs/KVM.md, "The freestanding image on the stable gnu target").

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE_BASE: u64 = 0x0040_0000;
const IMAGE_MAX_SIZE: u64 = 0x0040_0000;

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let image_dir = root.join("image");
    let abi_src = root.join("abi/src/lib.rs");
    println!("cargo:rerun-if-changed={}", image_dir.display());
    println!("cargo:rerun-if-changed={}", abi_src.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=ISOBENCH_GIT_COMMIT={}", git_commit(&root));

    let elf_path = out.join("isobench-image.elf");
    let linker_script = image_dir.join("link.ld");
    let status = Command::new(&rustc)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "isobench_image",
        ])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .args([
            "-C",
            "opt-level=3",
            "-C",
            "panic=abort",
            "-C",
            "relocation-model=static",
        ])
        .args([
            "-C",
            "no-redzone=yes",
            "-C",
            "debuginfo=0",
            "-C",
            "codegen-units=1",
        ])
        .args(["-C", "target-cpu=x86-64", "-C", "strip=symbols"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args([
            "-C",
            "link-arg=-static",
            "-C",
            "link-arg=-Wl,--build-id=none",
        ])
        .arg("-C")
        .arg(format!("link-arg=-Wl,-T,{}", linker_script.display()))
        .arg(format!("--remap-path-prefix={}=/isobench", root.display()))
        .arg("-o")
        .arg(&elf_path)
        .arg(image_dir.join("src/main.rs"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {rustc} to build the workload image: {e}"));
    assert!(
        status.success(),
        "building the workload image (image/src) failed; see the rustc errors above"
    );

    let elf = fs::read(&elf_path).expect("read the image ELF");
    let (flat, mem_size, entry) = flatten(&elf);
    assert_eq!(
        entry, IMAGE_BASE,
        "the image entry must be at IMAGE_BASE (link.ld keeps .text.entry first)"
    );
    assert!(
        mem_size <= IMAGE_MAX_SIZE,
        "the image needs {mem_size} bytes, more than IMAGE_MAX_SIZE"
    );
    fs::write(out.join("isobench-image.bin"), &flat).expect("write the flat image");
    fs::write(
        out.join("image_meta.rs"),
        format!("/// Bytes the image occupies once loaded, including bss.\npub const IMAGE_MEM_SIZE: u64 = {mem_size};\n"),
    )
    .expect("write image_meta.rs");
}

/// The commit the binary is built from (with `-dirty` for uncommitted changes), or
/// `unknown` outside a git checkout.
fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    for p in [".git/HEAD", ".git/index"] {
        if root.join(p).exists() {
            println!("cargo:rerun-if-changed={}", root.join(p).display());
        }
    }
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    let mut commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    if git(&["diff", "--quiet", "HEAD"]).is_none() {
        commit.push_str("-dirty");
    }
    commit
}

/// Flatten the PT_LOAD segments of a static ELF64 into one byte vector starting at
/// `IMAGE_BASE`. Returns (file bytes, memory size including bss, entry address).
fn flatten(elf: &[u8]) -> (Vec<u8>, u64, u64) {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    assert_eq!(&elf[..4], b"\x7fELF", "image is not an ELF file");
    assert_eq!(elf[4], 2, "image is not ELF64");
    let entry = u64_at(24);
    let phoff = u64_at(32) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    let mut flat = Vec::new();
    let mut mem_end = IMAGE_BASE;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph) != 1 {
            continue; // not PT_LOAD
        }
        let offset = u64_at(ph + 8) as usize;
        let vaddr = u64_at(ph + 16);
        let filesz = u64_at(ph + 32) as usize;
        let memsz = u64_at(ph + 40);
        assert!(
            vaddr >= IMAGE_BASE,
            "segment at {vaddr:#x} is below IMAGE_BASE"
        );
        let start = (vaddr - IMAGE_BASE) as usize;
        if flat.len() < start + filesz {
            flat.resize(start + filesz, 0);
        }
        flat[start..start + filesz].copy_from_slice(&elf[offset..offset + filesz]);
        mem_end = mem_end.max(vaddr + memsz);
    }
    assert!(!flat.is_empty(), "image has no loadable segment");
    (flat, mem_end - IMAGE_BASE, entry)
}
