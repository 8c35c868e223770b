//! An OCI bundle isobench writes itself: a directory holding `config.json` (generated with
//! the `oci-spec` crate) and a root filesystem that is the built-in container's minimal
//! skeleton plus what an exec'd program needs (the host's `/usr` read-only, the `lib`
//! links, one program file bind-mounted read-only). Used by the OCI environments and meant
//! for any other caller that runs a program under an OCI runtime (docs/RUNTIMES.md).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder,
    LinuxSeccomp, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// The directories of the root filesystem's skeleton: the built-in container's (proc, dev,
/// scratch, tmp, etc) and the mount points an exec'd program needs.
const SKELETON_DIRS: [&str; 6] = ["proc", "dev", "scratch", "tmp", "etc", "usr"];

/// Where the `lib` directories point on a merged-`/usr` host (Debian 12): relative links
/// inside the root, so the host's `/usr` bind-mount serves the dynamic loader and libc.
const LIB_LINKS: [(&str, &str); 2] = [("lib", "usr/lib"), ("lib64", "usr/lib64")];

/// Limits for `linux.resources`, as the run options give them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    /// CPUs, like `docker run --cpus` (0.1 = 10% of one CPU): a CFS quota over a 100 ms period.
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// The CPUs the container may use, a cpuset list (`0`, `0-1`).
    pub cpuset: Option<String>,
    /// Relative IO weight (`linux.resources.blockIO.weight`).
    pub io_weight: Option<u16>,
}

/// The CFS period the `--cpus` quota is expressed against (microseconds), as Docker uses.
pub const CPU_PERIOD_US: u64 = 100_000;

/// One bind mount into the container.
#[derive(Clone, Debug, PartialEq)]
pub struct Bind {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

/// The container process's privileges as Docker sets them (`--caps`, `--seccomp`).
#[derive(Clone, Debug, PartialEq)]
pub struct Privileges {
    /// Capability names (`CAP_CHOWN`, …): its bounding, effective and permitted sets.
    pub capabilities: Vec<String>,
    /// `linux.seccomp`, which the runtime installs (None: no filter).
    pub seccomp: Option<LinuxSeccomp>,
}

/// What a bundle runs and with what.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleSpec {
    /// The program (a host file, bind-mounted read-only at `/<file name>`) and its arguments.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra bind mounts (the scratch directory).
    pub binds: Vec<Bind>,
    pub resources: Resources,
    /// `linux.cgroupsPath` (runtimes create it and remove it on `delete`).
    pub cgroups_path: Option<String>,
    pub hostname: String,
    /// The process's capabilities and seccomp filter; None leaves oci-spec's defaults (the
    /// probe; the exec init sets its own and drops them itself).
    pub privileges: Option<Privileges>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("creating the OCI bundle directory {path}: {source} (is the directory writable?)")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the program {path} has no file name to bind-mount it under")]
    Program { path: PathBuf },
    #[error("building the OCI config.json: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("building the OCI config.json: {0} is not a capability this oci-spec knows")]
    Capability(String),
}

/// A bundle on disk. Dropping it does not remove it: call [`Bundle::remove`] once the
/// container using it is deleted.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    /// The program's path inside the container.
    pub program_in_container: PathBuf,
}

fn mkdir_all(p: &Path) -> Result<(), BundleError> {
    std::fs::create_dir_all(p).map_err(|source| BundleError::Create {
        path: p.to_path_buf(),
        source,
    })
}

fn bind(host: &Path, container: &Path, read_only: bool) -> Result<Mount, BundleError> {
    let mut options = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
    options.push(if read_only { "ro" } else { "rw" }.into());
    Ok(MountBuilder::default()
        .destination(container)
        .typ("bind")
        .source(host)
        .options(options)
        .build()?)
}

/// The `config.json` of `spec` (pure: no file system access, so it is testable as is).
pub fn config(spec: &BundleSpec, program_in_container: &Path) -> Result<Spec, BundleError> {
    let mut args = vec![program_in_container.display().to_string()];
    args.extend(spec.args.iter().cloned());
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(args)
        .env(vec!["PATH=/usr/bin:/bin".to_string()])
        .cwd("/")
        .no_new_privileges(true);
    if let Some(p) = &spec.privileges {
        let caps: Capabilities = serde_json::from_value(serde_json::json!(p.capabilities))
            .map_err(|e| BundleError::Capability(e.to_string()))?;
        process = process.capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()?,
        );
    }
    let process = process.build()?;
    let mut mounts = vec![
        MountBuilder::default()
            .destination("/proc")
            .typ("proc")
            .source("proc")
            .build()?,
        MountBuilder::default()
            .destination("/dev")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec![
                "nosuid".to_string(),
                "strictatime".into(),
                "mode=755".into(),
                "size=65536k".into(),
            ])
            .build()?,
        MountBuilder::default()
            .destination("/tmp")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec![
                "nosuid".to_string(),
                "nodev".into(),
                "mode=1777".into(),
            ])
            .build()?,
        bind(Path::new("/usr"), Path::new("/usr"), true)?,
        bind(&spec.program, program_in_container, true)?,
    ];
    for b in &spec.binds {
        mounts.push(bind(&b.host, &b.container, b.read_only)?);
    }
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<Result<Vec<_>, _>>()?;
    let r = &spec.resources;
    let mut resources = LinuxResourcesBuilder::default();
    if r.cpus.is_some() || r.cpuset.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(c) = r.cpus {
            cpu = cpu
                .quota((c * CPU_PERIOD_US as f64).round() as i64)
                .period(CPU_PERIOD_US);
        }
        if let Some(set) = &r.cpuset {
            cpu = cpu.cpus(set.clone());
        }
        resources = resources.cpu(cpu.build()?);
    }
    if let Some(m) = r.memory {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(m as i64).build()?);
    }
    if let Some(w) = r.io_weight {
        resources = resources.block_io(LinuxBlockIoBuilder::default().weight(w).build()?);
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build()?)
        .masked_paths(Vec::<String>::new())
        .readonly_paths(Vec::<String>::new());
    if let Some(p) = &spec.cgroups_path {
        linux = linux.cgroups_path(PathBuf::from(p));
    }
    if let Some(s) = spec.privileges.as_ref().and_then(|p| p.seccomp.clone()) {
        linux = linux.seccomp(s);
    }
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()?,
        )
        .hostname(spec.hostname.clone())
        .mounts(mounts)
        .linux(linux.build()?)
        .build()?)
}

impl Bundle {
    /// Write the bundle for `spec` into `dir` (created; it must not exist yet): the root
    /// filesystem's skeleton, and `config.json`. On error the partial bundle is removed (a
    /// directory that was already there is left alone).
    pub fn write(dir: &Path, spec: &BundleSpec) -> Result<Bundle, BundleError> {
        let name = spec
            .program
            .file_name()
            .ok_or_else(|| BundleError::Program {
                path: spec.program.clone(),
            })?;
        let program_in_container = Path::new("/").join(name);
        let bundle = Bundle {
            dir: dir.to_path_buf(),
            program_in_container,
        };
        if let Some(parent) = dir.parent() {
            mkdir_all(parent)?;
        }
        std::fs::create_dir(dir).map_err(|source| BundleError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        let made = bundle.populate(spec);
        if made.is_err() {
            let _ = bundle.remove();
        }
        made.map(|()| bundle)
    }

    fn populate(&self, spec: &BundleSpec) -> Result<(), BundleError> {
        let root = self.rootfs();
        mkdir_all(&root)?;
        for d in SKELETON_DIRS {
            mkdir_all(&root.join(d))?;
        }
        for b in &spec.binds {
            mkdir_all(&root.join(b.container.strip_prefix("/").unwrap_or(&b.container)))?;
        }
        for (link, target) in LIB_LINKS {
            std::os::unix::fs::symlink(target, root.join(link)).map_err(|source| {
                BundleError::Create {
                    path: root.join(link),
                    source,
                }
            })?;
        }
        // The mount point of the program's read-only bind mount.
        let at = root.join(
            self.program_in_container
                .strip_prefix("/")
                .unwrap_or(&self.program_in_container),
        );
        std::fs::write(&at, b"").map_err(|source| BundleError::Create { path: at, source })?;
        config(spec, &self.program_in_container)?.save(self.dir.join("config.json"))?;
        Ok(())
    }

    /// The root filesystem directory (`<bundle>/rootfs`).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Remove the bundle directory (after its container has been deleted: nothing is
    /// mounted in it on the host, runtimes mount in the container's own mount namespace).
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BundleSpec {
        BundleSpec {
            program: PathBuf::from("/opt/bin/isobench"),
            args: vec!["__oci-runner".into(), "serve".into()],
            binds: vec![Bind {
                host: PathBuf::from("/srv/scratch/x"),
                container: PathBuf::from("/scratch"),
                read_only: false,
            }],
            resources: Resources {
                cpus: Some(0.1),
                memory: Some(512 << 20),
                cpuset: Some("1".into()),
                io_weight: Some(500),
            },
            cgroups_path: Some("/isobench-oci/isobench-1-runc-0".into()),
            hostname: "isobench".into(),
            privileges: None,
        }
    }

    #[test]
    fn privileges_set_capabilities_and_the_runtimes_seccomp_filter() {
        let mask = crate::env::container::security::DOCKER_DEFAULT_CAP_MASK;
        let mut s = spec();
        s.privileges = Some(Privileges {
            capabilities: crate::env::container::security::caps_of(mask)
                .into_iter()
                .map(String::from)
                .collect(),
            seccomp: Some(super::super::seccomp::linux_seccomp(mask).unwrap()),
        });
        let json = serde_json::to_value(config(&s, Path::new("/isobench")).unwrap()).unwrap();
        let caps = &json["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            let mut names: Vec<&str> = caps[set]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            names.sort_unstable();
            assert_eq!(names.len(), 14, "{set}: {names:?}");
            assert!(names.contains(&"CAP_NET_BIND_SERVICE"), "{names:?}");
            assert!(!names.contains(&"CAP_SYS_ADMIN"), "{names:?}");
        }
        assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        // A bad capability name is a clear error, not a config without it.
        s.privileges.as_mut().unwrap().capabilities = vec!["CAP_NOPE".into()];
        let e = config(&s, Path::new("/isobench")).unwrap_err().to_string();
        assert!(e.contains("capability"), "{e}");
        // Without privileges, no filter.
        let json = serde_json::to_value(config(&spec(), Path::new("/isobench")).unwrap()).unwrap();
        assert!(json["linux"]["seccomp"].is_null());
    }

    #[test]
    fn limits_map_to_linux_resources() {
        let c = config(&spec(), Path::new("/isobench")).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        let res = &json["linux"]["resources"];
        assert_eq!(res["cpu"]["quota"], 10_000);
        assert_eq!(res["cpu"]["period"], 100_000);
        assert_eq!(res["cpu"]["cpus"], "1");
        assert_eq!(res["memory"]["limit"], 512u64 << 20);
        assert_eq!(res["blockIO"]["weight"], 500);
        assert_eq!(
            json["linux"]["cgroupsPath"],
            "/isobench-oci/isobench-1-runc-0"
        );
        assert_eq!(
            json["process"]["args"],
            serde_json::json!(["/isobench", "__oci-runner", "serve"])
        );
        assert_eq!(json["root"]["readonly"], true);
        let mounts = json["mounts"].as_array().unwrap();
        let scratch = mounts
            .iter()
            .find(|m| m["destination"] == "/scratch")
            .unwrap();
        assert_eq!(scratch["source"], "/srv/scratch/x");
        assert!(scratch["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("rw")));
        let program = mounts
            .iter()
            .find(|m| m["destination"] == "/isobench")
            .unwrap();
        assert!(program["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("ro")));
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"network"), "{ns:?}");
    }

    #[test]
    fn no_limits_no_resources() {
        let mut s = spec();
        s.resources = Resources::default();
        let json = serde_json::to_value(config(&s, Path::new("/isobench")).unwrap()).unwrap();
        assert!(json["linux"]["resources"]["cpu"].is_null());
        assert!(json["linux"]["resources"]["memory"].is_null());
    }

    #[test]
    fn write_makes_skeleton_and_config() {
        let t = tempfile::tempdir().unwrap();
        let b = Bundle::write(&t.path().join("b"), &spec()).unwrap();
        for d in ["rootfs/proc", "rootfs/dev", "rootfs/scratch", "rootfs/usr"] {
            assert!(b.dir.join(d).is_dir(), "{d}");
        }
        assert!(b.rootfs().join("isobench").is_file());
        assert_eq!(
            std::fs::read_link(b.rootfs().join("lib")).unwrap(),
            Path::new("usr/lib")
        );
        let back = Spec::load(b.dir.join("config.json")).unwrap();
        assert_eq!(back.hostname().as_deref(), Some("isobench"));
        b.remove().unwrap();
        assert!(!b.dir.exists());
        assert!(Bundle::write(&t.path().join("b"), &spec()).is_ok());
        assert!(
            Bundle::write(&t.path().join("b"), &spec()).is_err(),
            "an existing bundle directory is refused"
        );
    }
}
