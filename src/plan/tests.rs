//! Unit tests of the plan: sizes, durations, CPU choices, workload globs, typed options.

use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_size("512M"), Some(512 << 20));
    assert_eq!(parse_size("2G"), Some(2 << 30));
    assert_eq!(parse_size("64KiB"), Some(64 << 10));
    assert_eq!(parse_size("1000"), Some(1000));
    assert_eq!(parse_size("0.5G"), Some(512 << 20));
    assert_eq!(parse_size("12X"), None);
    assert_eq!(parse_size(""), None);
    assert_eq!(parse_size("0"), None);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("180"), Ok(Duration::from_secs(180)));
    for bad in ["", "3x", "m", "-5", "0s", "1.5.2m"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn cpu_choices_and_injections() {
    assert_eq!(parse_cpu_choice("auto"), Ok(CpuChoice::Auto));
    assert_eq!(parse_cpu_choice("1"), Ok(CpuChoice::Cpu(1)));
    assert!(parse_cpu_choice("x").is_err());
    assert_eq!(
        parse_injection("container=2"),
        Ok(Injection {
            env: "container".into(),
            fraction: 0.02
        })
    );
    assert!(parse_injection("container").is_err());
}

#[test]
fn cpusets() {
    assert!(parse_cpuset("0").is_ok());
    assert!(parse_cpuset("0-1,3").is_ok());
    assert!(parse_cpuset("a").is_err());
    assert!(parse_cpuset("").is_err());
    assert!(parse_cpuset("1-").is_err());
}

#[test]
fn workload_globs() {
    let (w, start) = select_workloads(&["cpu.*".into()]).unwrap();
    assert!(w.iter().all(|w| w.name.starts_with("cpu.")) && !w.is_empty());
    assert!(!start);
    let (_, start) = select_workloads(&["start".into()]).unwrap();
    assert!(start);
    let err = select_workloads(&["nope*".into()]).unwrap_err().to_string();
    assert!(err.contains("nope*") && err.contains("cpu.int"), "{err}");
    // A list that names nothing (`--workload ''`) is refused, not taken as "all".
    let err = select_workloads(&["".into(), " ".into()]).unwrap_err();
    assert!(matches!(err, PlanError::EmptyWorkload), "{err}");
}

#[test]
fn typed_options_record_as_typed() {
    for u in [Upper::Disk, Upper::Tmpfs] {
        assert_eq!(u.to_possible_value().unwrap().get_name(), u.name());
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            format!("\"{}\"", u.name())
        );
    }
    for g in [GuestPageSize::Size4K, GuestPageSize::Size2M] {
        assert_eq!(g.to_possible_value().unwrap().get_name(), g.name());
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            format!("\"{}\"", g.name())
        );
    }
    for t in [Thp::On, Thp::Off] {
        assert_eq!(t.to_possible_value().unwrap().get_name(), t.name());
    }
    for s in [Seccomp::Default, Seccomp::Off] {
        assert_eq!(s.to_possible_value().unwrap().get_name(), s.name());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.name())
        );
    }
    for c in [Caps::Default, Caps::All] {
        assert_eq!(c.to_possible_value().unwrap().get_name(), c.name());
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            format!("\"{}\"", c.name())
        );
    }
}

#[test]
fn labels_are_key_value_pairs() {
    assert_eq!(
        parse_label("pool=gpu-a").unwrap(),
        ("pool".to_string(), "gpu-a".to_string())
    );
    assert_eq!(
        parse_label("k8s.node=n=1").unwrap(),
        ("k8s.node".to_string(), "n=1".to_string())
    );
    assert_eq!(parse_label("empty=").unwrap().1, "");
    assert!(parse_label("novalue").unwrap_err().contains("KEY=VALUE"));
    assert!(parse_label("=x").unwrap_err().contains("non-empty"));
    assert!(parse_label("a b=x").is_err());
}

/// `--env` as a user types it, through clap, to a plan.
/// The plan of `isobench run --env ENV`, or of `isobench run` when `env` is `None`.
fn plan_of(env: Option<&str>) -> Result<Plan, PlanError> {
    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        o: RunOptions,
    }
    use clap::Parser;
    let args: &[&str] = match env {
        Some(env) => &["isobench", "--env", env],
        None => &["isobench"],
    };
    Wrap::try_parse_from(args).unwrap().o.plan()
}

#[test]
fn runtimes_are_environments_and_oci_needs_a_path() {
    let p = plan_of(Some("runsc,native,runc")).unwrap();
    assert_eq!(p.envs, [EnvKind::Native, EnvKind::Runc, EnvKind::Runsc]);
    assert_eq!(p.oci_path, None);
    let p = plan_of(Some("native,oci:/opt/youki")).unwrap();
    assert_eq!(p.envs, [EnvKind::Native, EnvKind::Oci]);
    assert_eq!(p.oci_path.as_deref(), Some(Path::new("/opt/youki")));
    for bad in ["oci", "oci:", "oci:/a,oci:/b"] {
        assert!(
            matches!(plan_of(Some(bad)), Err(PlanError::BadOciEnv(_))),
            "{bad}"
        );
    }
    assert!(matches!(plan_of(Some("")), Err(PlanError::EmptyEnv)));
    let all = plan_of(None).unwrap();
    assert!(all.envs.contains(&EnvKind::Runsc) && !all.envs.contains(&EnvKind::Oci));
}
