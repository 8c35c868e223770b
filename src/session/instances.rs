//! The environment instances of one run: which environments can run here (the others are
//! recorded as skipped), starting them, and proving that each runs the embedded image by
//! hashing the bytes read back from the running instance.

use anyhow::{bail, Result};

use super::Observer;
use crate::env::{self, Environment, InstanceSpec};
use crate::image;
use crate::plan::Plan;
use crate::results::{EnvKind, EnvRecord, EnvStatus};

/// The environments of a run: those built to run, and the records of those skipped.
pub(super) type Available = (Vec<Box<dyn Environment>>, Vec<EnvRecord>);

/// The environments of `plan` that can run here, built (not started), and the records of
/// those that cannot. With `--strict` an unavailable environment is an error.
pub(super) fn build_available(plan: &Plan, observer: &mut dyn Observer) -> Result<Available> {
    let mut envs: Vec<Box<dyn Environment>> = Vec::new();
    let mut records = Vec::new();
    for &kind in &plan.envs {
        // `isobench exec`: the command environments (env/exec.rs).
        let probed = match &plan.exec {
            Some(_) => env::exec::probe(kind),
            None => env::probe_planned(kind, plan),
        };
        match probed {
            Ok(()) => {
                for label in kind.labels() {
                    envs.push(match &plan.exec {
                        Some(_) => env::exec::build(kind, label, plan)?,
                        None => env::build(kind, label, plan)?,
                    });
                }
            }
            Err(reason) => {
                if plan.strict {
                    bail!(
                        "the {} environment cannot run here: {reason} (drop --strict to skip it)",
                        kind.name()
                    );
                }
                observer.note(&format!(
                    "skipping the {} environment: {reason}",
                    kind.name()
                ));
                records.extend(kind.labels().iter().map(|l| skipped(kind, l, &reason)));
            }
        }
    }
    if envs.is_empty() {
        bail!("no requested environment can run here (see the reasons above)");
    }
    if !envs.iter().any(|e| e.kind() == env::EnvKind::Native) {
        observer.note("note: without the native environment there is no baseline, so no overhead can be computed");
    }
    Ok((envs, records))
}

/// Start every environment, stopping at the first that fails.
pub(super) fn start_all(
    envs: &mut [Box<dyn Environment>],
    spec: &InstanceSpec,
    observer: &mut dyn Observer,
) -> Result<()> {
    for e in envs.iter_mut() {
        observer.note(&match spec.work_size {
            // `isobench exec`: no image, no working memory.
            0 => format!("  starting {}…", e.label()),
            w => format!("  starting {} ({} MiB working memory)…", e.label(), w >> 20),
        });
        e.start(spec).map_err(|err| {
            anyhow::Error::new(err).context(format!("starting the {} environment", e.label()))
        })?;
    }
    Ok(())
}

/// The records of the started environments, with the hash of the image each holds. A hash
/// that differs from the embedded image's becomes the run's `failure` (unless it already
/// failed).
pub(super) fn records(
    envs: &[Box<dyn Environment>],
    image_sha: &str,
    failure: &mut Option<anyhow::Error>,
) -> Vec<EnvRecord> {
    let mut records = Vec::new();
    for e in envs {
        let mut facts = e.facts();
        // Prove that every environment runs the same bytes: read the image back from the
        // running instance (runner memory or guest memory) and hash it.
        let loaded = if failure.is_some() {
            None
        } else {
            e.loaded_image()
        };
        let (image_sha256, verified) = match loaded {
            Some(Ok(bytes)) => {
                let sha = image::sha256_hex_of(&bytes);
                if sha != image_sha {
                    failure.get_or_insert(anyhow::anyhow!(
                        "the image loaded in the {} environment has sha256 {sha}, not the embedded image's {image_sha}: its memory was altered after loading",
                        e.label()
                    ));
                }
                (sha, "read back from the running instance".to_string())
            }
            Some(Err(err)) => (
                image_sha.to_string(),
                format!("no: reading it back failed ({err})"),
            ),
            None => (image_sha.to_string(), "no: not read back".to_string()),
        };
        facts.insert("image_verified".into(), verified);
        records.push(EnvRecord {
            label: e.label().into(),
            kind: e.kind(),
            status: if failure.is_some() {
                EnvStatus::Failed
            } else {
                EnvStatus::Ran
            },
            reason: None,
            image_sha256,
            facts,
        });
    }
    records
}

/// The record of an environment that did not run.
fn skipped(kind: EnvKind, label: &str, reason: &str) -> EnvRecord {
    EnvRecord {
        label: label.to_string(),
        kind,
        status: EnvStatus::Skipped,
        reason: Some(reason.to_string()),
        ..Default::default()
    }
}
