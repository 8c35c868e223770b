//! The fleet recipes in scripts/fleet/ are checked without a cluster: the Kubernetes
//! manifests deserialize into k8s-openapi's typed objects and back without losing a field
//! (so a typo fails), the GitHub workflow parses as YAML and has its matrix, artifacts and
//! PR comment, and every isobench flag any recipe uses exists in the CLI definition (read
//! through clap's introspection).

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

fn recipe(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/fleet")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(recipe(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// `T` from the YAML, and the check that serializing it back gives the same document: a
/// field k8s-openapi does not know (a typo) is dropped on the way and shows as a difference.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(yaml: &str) -> Result<T, String> {
    let value: serde_json::Value = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if back != value {
        return Err(format!(
            "fields lost in the typed object (a typo?):\nwritten: {value:#}\ntyped:   {back:#}"
        ));
    }
    Ok(typed)
}

fn job(path: &str) -> Job {
    typed::<Job>(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn kubernetes_manifests_are_typed_objects() {
    let pvc: PersistentVolumeClaim = typed(&read("k8s/results-pvc.yaml")).unwrap();
    let claim = pvc.metadata.name.clone().unwrap();
    assert_eq!(
        pvc.spec.unwrap().access_modes.unwrap(),
        ["ReadWriteMany"],
        "every node writes its run to the same volume"
    );

    let measure = job("k8s/isobench-job.yaml");
    let spec = measure.spec.unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(spec.completions, spec.parallelism);
    let pod = spec.template.spec.unwrap();
    let anti = pod
        .affinity
        .unwrap()
        .pod_anti_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap();
    assert_eq!(anti[0].topology_key, "kubernetes.io/hostname");
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    let selector = anti[0]
        .label_selector
        .clone()
        .unwrap()
        .match_labels
        .unwrap();
    for (k, v) in &selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "anti-affinity selects the job's own pods"
        );
    }
    let c = &pod.containers[0];
    assert_eq!(c.security_context.as_ref().unwrap().privileged, Some(true));
    let volumes = pod.volumes.unwrap();
    let host_path = |name: &str| {
        volumes
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.host_path.as_ref())
            .map(|h| h.path.clone())
    };
    let mounts = c.volume_mounts.clone().unwrap();
    for (path, volume_path) in [
        ("/dev/kvm", "/dev/kvm"),
        ("/sys/fs/cgroup", "/sys/fs/cgroup"),
    ] {
        let m = mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("{path} is not mounted"));
        assert_eq!(host_path(&m.name).as_deref(), Some(volume_path));
    }
    let claim_of = |volumes: &[k8s_openapi::api::core::v1::Volume]| {
        volumes
            .iter()
            .find_map(|v| v.persistent_volume_claim.as_ref())
            .map(|p| p.claim_name.clone())
    };
    assert_eq!(claim_of(&volumes), Some(claim.clone()));

    let merge = job("k8s/merge-job.yaml");
    let merge_pod = merge.spec.unwrap().template.spec.unwrap();
    assert_eq!(claim_of(&merge_pod.volumes.unwrap()), Some(claim));
}

#[test]
fn a_typo_in_a_manifest_fails() {
    let text = read("k8s/isobench-job.yaml");
    for (right, wrong) in [
        ("completionMode:", "completionMod:"),
        ("topologyKey:", "topologykey:"),
        ("privileged: true", "privileged: yes-please"),
    ] {
        assert!(text.contains(right), "{right}");
        let broken = text.replacen(right, wrong, 1);
        assert!(
            typed::<Job>(&broken).is_err(),
            "{wrong} should not pass for {right}"
        );
    }
}

/// Every `isobench SUBCOMMAND --flag` in `text` (continuation lines joined, comments
/// skipped) where `isobench` (or a path ending in it) stands where a command does: first
/// on the line (after `- ` in YAML) or after `&&`, `||`, `;`, `|`.
fn isobench_calls(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    let mut calls = Vec::new();
    for line in joined.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (i, t) in tokens.iter().enumerate() {
            let at_command = i == 0 || ["&&", "||", ";", "|", "-", "run:"].contains(&tokens[i - 1]);
            if t.rsplit('/').next() != Some("isobench") || !at_command {
                continue;
            }
            let Some(sub) = tokens.get(i + 1) else {
                continue;
            };
            let flags = tokens[i + 2..]
                .iter()
                .take_while(|t| !["&&", "||", ";", "|"].contains(t) && !t.starts_with('>'))
                .filter_map(|t| t.strip_prefix("--"))
                .map(|f| f.split('=').next().unwrap().to_string())
                .collect();
            calls.push((sub.to_string(), flags));
        }
    }
    calls
}

/// The flags of every `isobench` call in `text` that the CLI does not define.
fn unknown_flags(text: &str) -> Vec<String> {
    let mut cli = isobench::cli::args::Cli::command();
    cli.build();
    let mut unknown = Vec::new();
    for (sub, flags) in isobench_calls(text) {
        let Some(cmd) = cli.find_subcommand(&sub) else {
            unknown.push(format!("isobench {sub} (no such subcommand)"));
            continue;
        };
        for f in flags {
            let known = cmd.get_arguments().any(|a| {
                a.get_long() == Some(f.as_str())
                    || a.get_all_aliases()
                        .is_some_and(|al| al.contains(&f.as_str()))
            });
            if !known {
                unknown.push(format!("isobench {sub} --{f}"));
            }
        }
    }
    unknown
}

#[test]
fn the_flag_check_sees_calls_and_catches_unknown_flags() {
    let calls = isobench_calls(
        "./target/release/isobench run --budget 3m \\\n  --label a=b --out results && isobench pack x -o y > z\necho \"isobench fleet\"\n# isobench nothing",
    );
    assert_eq!(
        calls,
        [
            (
                "run".to_string(),
                vec!["budget".into(), "label".into(), "out".into()]
            ),
            ("pack".to_string(), vec![]),
        ]
    );
    assert!(unknown_flags("isobench run --budget 3m --out r").is_empty());
    assert_eq!(
        unknown_flags("isobench merge r --outdir x && isobench frobnicate"),
        [
            "isobench merge --outdir",
            "isobench frobnicate (no such subcommand)"
        ]
    );
}

/// The shell a recipe runs: a script's text, or the `run:` steps and container `args` of
/// a YAML file (folded scalars come out joined, as the shell sees them).
fn shell_of(path: &str) -> String {
    let text = read(path);
    if !(path.ends_with(".yml") || path.ends_with(".yaml")) {
        return text;
    }
    fn collect(v: &serde_yaml::Value, under_shell_key: bool, out: &mut String) {
        match v {
            serde_yaml::Value::String(s) if under_shell_key => {
                out.push_str(s);
                out.push('\n');
            }
            serde_yaml::Value::Sequence(items) => {
                items.iter().for_each(|i| collect(i, under_shell_key, out))
            }
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    let key = k.as_str().unwrap_or("");
                    collect(v, key == "run" || key == "args", out);
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    collect(&serde_yaml::from_str(&text).unwrap(), false, &mut out);
    out
}

#[test]
fn every_recipe_uses_existing_flags() {
    for path in [
        "github/isobench-fleet.yml",
        "k8s/isobench-job.yaml",
        "k8s/merge-job.yaml",
        "slurm/isobench-array.sbatch",
        "slurm/isobench-merge.sbatch",
    ] {
        let text = shell_of(path);
        let calls = isobench_calls(&text);
        assert!(!calls.is_empty(), "{path} calls no isobench");
        let unknown = unknown_flags(&text);
        assert!(unknown.is_empty(), "{path} uses {unknown:?}");
    }
    // In every recipe the run is labelled and travels as a tarball.
    for path in [
        "github/isobench-fleet.yml",
        "k8s/isobench-job.yaml",
        "slurm/isobench-array.sbatch",
    ] {
        let calls = isobench_calls(&shell_of(path));
        let runs: Vec<_> = calls.iter().filter(|(s, _)| s == "run").collect();
        assert!(!runs.is_empty(), "{path} has no isobench run");
        assert!(
            runs.iter().all(|(_, f)| f.iter().any(|x| x == "label")),
            "{path}: every isobench run records --label"
        );
        assert!(
            calls.iter().any(|(s, _)| s == "pack"),
            "{path} packs no run"
        );
    }
}

#[test]
fn github_workflow_has_matrix_artifacts_merge_and_comment() {
    let text = read("github/isobench-fleet.yml");
    let w: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let measure = &w["jobs"]["measure"];
    let runners = measure["strategy"]["matrix"]["runner"]
        .as_sequence()
        .unwrap();
    assert!(runners.len() >= 2);
    for r in runners {
        let labels: Vec<&str> = r
            .as_sequence()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(labels.contains(&"self-hosted"), "{labels:?}");
    }
    assert_eq!(measure["runs-on"].as_str(), Some("${{ matrix.runner }}"));
    let uses = |job: &serde_yaml::Value| -> Vec<String> {
        job["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["uses"].as_str().map(String::from))
            .collect()
    };
    assert!(uses(measure)
        .iter()
        .any(|u| u.starts_with("actions/upload-artifact@")));
    let merge = &w["jobs"]["merge"];
    assert_eq!(merge["needs"].as_str(), Some("measure"));
    assert!(uses(merge)
        .iter()
        .any(|u| u.starts_with("actions/download-artifact@")));
    assert_eq!(
        merge["permissions"]["pull-requests"].as_str(),
        Some("write")
    );
    let runs: Vec<&str> = merge["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(runs.iter().any(|r| r.contains("isobench merge")));
    assert!(runs.iter().any(|r| r.contains("gh pr comment")));
}
