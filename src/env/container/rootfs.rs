//! The container's root filesystem: the host-side directories (a read-only lower layer with
//! only the skeleton the runner needs, upper and work dirs beside the native scratch files
//! or on a tmpfs), and the child-side mounts: overlay, the device nodes, `pivot_root`,
//! a fresh `/proc`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::plan::Upper;

/// The device nodes bind-mounted into the container's `/dev`.
pub const DEV_NODES: [&str; 3] = ["null", "zero", "urandom"];

/// The directories of the lower layer (all a forked runner needs: it is not exec'd).
const LOWER_DIRS: [&str; 5] = ["proc", "dev", "scratch", "tmp", "etc"];

/// Inside the container: the IO workloads' disk file (in the overlay's upper dir on the host).
pub const DISK_PATH: &CStr = c"/scratch/disk";

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("creating {path}: {source} (is the scratch directory writable, and on a filesystem overlayfs accepts as upper: not overlay itself?)")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the command container's root {path} is not a directory: give --rootfs an unpacked image's root")]
    NoRoot { path: PathBuf },
    #[error("the scratch path {path} cannot be used in overlay mount options (it contains ',', ':', a newline or a NUL); choose another --scratch")]
    BadPath { path: PathBuf },
}

/// A container's directories on the host, under `<scratch>/<name>/`.
#[derive(Debug)]
pub struct Rootfs {
    pub dir: PathBuf,
    pub lower: PathBuf,
    pub merged: PathBuf,
    pub upper_kind: Upper,
    /// Scratch: the upper/work dirs. Tmpfs: the mount point and the dirs created in it.
    pub upper: PathBuf,
    pub work: PathBuf,
    pub tmpfs: Option<PathBuf>,
}

fn mkdir(p: &Path) -> Result<(), RootfsError> {
    std::fs::create_dir(p).map_err(|source| RootfsError::CreateDir {
        path: p.to_path_buf(),
        source,
    })
}

fn cstr(p: &Path) -> Result<CString, RootfsError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| RootfsError::BadPath {
        path: p.to_path_buf(),
    })
}

impl Rootfs {
    /// Create `<scratch>/<name>/{lower,upper,work,merged}` (or `upperfs` for a tmpfs upper).
    /// On error the partial tree is removed.
    pub fn prepare(scratch: &Path, name: &str, kind: Upper) -> Result<Rootfs, RootfsError> {
        let dir = scratch.join(name);
        let bytes = dir.as_os_str().as_bytes();
        if bytes.iter().any(|b| matches!(b, b',' | b':' | b'\n' | 0)) {
            return Err(RootfsError::BadPath { path: dir });
        }
        let rootfs = match kind {
            Upper::Disk => Rootfs {
                lower: dir.join("lower"),
                merged: dir.join("merged"),
                upper: dir.join("upper"),
                work: dir.join("work"),
                tmpfs: None,
                upper_kind: kind,
                dir,
            },
            Upper::Tmpfs => Rootfs {
                lower: dir.join("lower"),
                merged: dir.join("merged"),
                upper: dir.join("upperfs/upper"),
                work: dir.join("upperfs/work"),
                tmpfs: Some(dir.join("upperfs")),
                upper_kind: kind,
                dir,
            },
        };
        mkdir(&rootfs.dir)?;
        let made = rootfs.populate();
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&rootfs.dir);
        }
        made.map(|()| rootfs)
    }

    /// For a command container (`container/exec.rs`): `<scratch>/<name>/{upper,work,merged}`
    /// (or `upperfs` for a tmpfs upper) over an existing read-only `lower` (the host's `/` or
    /// `--rootfs`), which is left alone, removal included. On error the partial tree is
    /// removed.
    pub fn prepare_over(
        scratch: &Path,
        name: &str,
        kind: Upper,
        lower: &Path,
    ) -> Result<Rootfs, RootfsError> {
        if !lower.is_dir() {
            return Err(RootfsError::CreateDir {
                path: lower.to_path_buf(),
                source: std::io::Error::other(
                    "the root for the command container is not a directory (check --rootfs)",
                ),
            });
        }
        let mut r = Rootfs::prepare(scratch, name, kind)?;
        let skeleton = std::mem::replace(&mut r.lower, lower.to_path_buf());
        if lower
            .as_os_str()
            .as_bytes()
            .iter()
            .any(|b| matches!(b, b',' | b':' | b'\n' | 0))
        {
            let _ = r.remove();
            return Err(RootfsError::BadPath {
                path: lower.to_path_buf(),
            });
        }
        let _ = std::fs::remove_dir_all(&skeleton);
        Ok(r)
    }

    fn populate(&self) -> Result<(), RootfsError> {
        mkdir(&self.lower)?;
        for d in LOWER_DIRS {
            mkdir(&self.lower.join(d))?;
        }
        for n in DEV_NODES {
            let p = self.lower.join("dev").join(n);
            std::fs::write(&p, b"").map_err(|source| RootfsError::CreateDir { path: p, source })?;
        }
        mkdir(&self.merged)?;
        match &self.tmpfs {
            None => {
                mkdir(&self.upper)?;
                mkdir(&self.work)?;
            }
            Some(t) => mkdir(t)?,
        }
        Ok(())
    }

    /// The child-side plan: every path and option as a C string, made before the clone.
    pub fn plan(&self) -> Result<RootPlan, RootfsError> {
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.lower.display(),
            self.upper.display(),
            self.work.display()
        );
        let dev = |n: &str| -> Result<(CString, CString), RootfsError> {
            Ok((
                cstr(&Path::new("/dev").join(n))?,
                cstr(&self.merged.join("dev").join(n))?,
            ))
        };
        Ok(RootPlan {
            merged: cstr(&self.merged)?,
            overlay_opts: CString::new(opts).map_err(|_| RootfsError::BadPath {
                path: self.dir.clone(),
            })?,
            tmpfs: match &self.tmpfs {
                Some(t) => Some((cstr(t)?, cstr(&self.upper)?, cstr(&self.work)?)),
                None => None,
            },
            dev: [dev(DEV_NODES[0])?, dev(DEV_NODES[1])?, dev(DEV_NODES[2])?],
        })
    }

    /// Remove the container's directories (the mounts lived in its mount namespace and went
    /// with it).
    pub fn remove(&self) -> Result<(), super::cleanup::CleanupError> {
        super::cleanup::remove_tree(&self.dir)
    }
}

/// The child side's inputs, prepared before the clone.
pub struct RootPlan {
    pub merged: CString,
    pub overlay_opts: CString,
    /// (mount point, upper, work) when the upper layer is a tmpfs.
    pub tmpfs: Option<(CString, CString, CString)>,
    /// (host device node, bind target in the merged tree).
    pub dev: [(CString, CString); 3],
}

fn mount(
    src: &CStr,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> bool {
    // SAFETY: all pointers are NUL-terminated strings or null, as mount(2) expects.
    unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), CStr::as_ptr),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        ) == 0
    }
}

/// Child side: stop mounts from propagating back to the host (before any mount).
pub fn make_private() -> Result<(), &'static str> {
    // SAFETY: a null-source remount of "/" changing only propagation.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err("mount(\"/\", MS_REC|MS_PRIVATE) in the new mount namespace failed");
    }
    Ok(())
}

/// Child side: mount the overlay root and the device nodes, `pivot_root` into it, drop the
/// old root, mount a fresh `/proc` (from inside the new PID namespace).
pub fn enter_root(plan: &RootPlan) -> Result<(), &'static str> {
    if let Some((mnt, upper, work)) = &plan.tmpfs {
        if !mount(c"tmpfs", mnt, Some(c"tmpfs"), 0, Some(c"mode=0755")) {
            return Err("mounting the tmpfs for the overlay's upper layer failed");
        }
        // SAFETY: plain mkdir calls on NUL-terminated paths.
        if unsafe { libc::mkdir(upper.as_ptr(), 0o755) } != 0
            || unsafe { libc::mkdir(work.as_ptr(), 0o755) } != 0
        {
            return Err("creating upper/work on the tmpfs failed");
        }
    }
    if !mount(
        c"overlay",
        &plan.merged,
        Some(c"overlay"),
        0,
        Some(&plan.overlay_opts),
    ) {
        return Err("mounting the overlay root failed (is overlayfs available, and the scratch directory on a filesystem it accepts as upper, not overlay itself?)");
    }
    for (src, dst) in &plan.dev {
        if !mount(src, dst, None, libc::MS_BIND, None) {
            return Err("bind-mounting a device node into the container's /dev failed");
        }
    }
    // SAFETY: chdir/pivot_root/umount2 on NUL-terminated paths; pivot_root(".", ".") stacks
    // the old root on top of the new one, and the detach removes it.
    unsafe {
        if libc::chdir(plan.merged.as_ptr()) != 0 {
            return Err("chdir into the overlay root failed");
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
            return Err("pivot_root into the overlay root failed");
        }
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
            return Err("detaching the old root after pivot_root failed");
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err("chdir to the new root failed");
        }
    }
    if !mount(
        c"proc",
        c"/proc",
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    ) {
        return Err("mounting /proc inside the container failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_makes_the_skeleton_and_the_plan_names_it() {
        let t = tempfile::tempdir().unwrap();
        let r = Rootfs::prepare(t.path(), "isobench-1-0", Upper::Disk).unwrap();
        for d in [
            "lower/proc",
            "lower/dev",
            "lower/scratch",
            "upper",
            "work",
            "merged",
        ] {
            assert!(r.dir.join(d).is_dir(), "{d}");
        }
        assert!(r.lower.join("dev/null").is_file());
        let p = r.plan().unwrap();
        let opts = p.overlay_opts.to_str().unwrap();
        assert_eq!(
            opts,
            format!(
                "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
                r.dir.display()
            )
        );
        assert!(p.tmpfs.is_none());
        assert_eq!(p.dev[0].0.to_str().unwrap(), "/dev/null");
        r.remove().unwrap();
        assert!(!r.dir.exists());

        let r = Rootfs::prepare(t.path(), "isobench-1-1", Upper::Tmpfs).unwrap();
        assert!(r.dir.join("upperfs").is_dir());
        assert!(
            !r.upper.exists(),
            "the tmpfs upper is made inside the container"
        );
        assert!(r.plan().unwrap().tmpfs.is_some());
    }

    #[test]
    fn a_command_container_lays_its_layers_over_an_existing_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("image-root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("keep"), b"x").unwrap();
        let r = Rootfs::prepare_over(t.path(), "isobench-1-3", Upper::Disk, &root).unwrap();
        assert_eq!(r.lower, root);
        assert!(r.upper.is_dir() && r.work.is_dir() && r.merged.is_dir());
        assert!(
            !r.dir.join("lower").exists(),
            "no skeleton for a command container"
        );
        let opts = r.plan().unwrap().overlay_opts.into_string().unwrap();
        assert!(
            opts.starts_with(&format!("lowerdir={},", root.display())),
            "{opts}"
        );
        r.remove().unwrap();
        assert!(!r.dir.exists());
        assert!(
            root.join("keep").exists(),
            "the lower layer is never removed"
        );
        let e = Rootfs::prepare_over(
            t.path(),
            "isobench-1-4",
            Upper::Disk,
            &t.path().join("nope"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--rootfs"), "{e}");
        assert!(!t.path().join("isobench-1-4").exists());
    }

    #[test]
    fn paths_overlay_cannot_take_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let bad = t.path().join("a,b");
        std::fs::create_dir(&bad).unwrap();
        let e = Rootfs::prepare(&bad, "isobench-1-2", Upper::Disk).unwrap_err();
        assert!(matches!(e, RootfsError::BadPath { .. }));
    }
}
