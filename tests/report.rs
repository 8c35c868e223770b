//! Reports of stored synthetic runs: render reproduces its files, snapshots of the exact
//! CSV/Markdown/terminal outputs, and plots from edge cases.

mod common;

use std::path::{Path, PathBuf};

use common::{catalogue, store_run, synthetic_run, synthetic_samples};
use isobench::report::{render, render_with, terminal_table, RenderOptions};

const ENVS: &[&str] = &["native", "native-b", "container", "vm"];

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn renders_the_full_synthetic_run() {
    let dir = fresh_dir("synthetic-run");
    store_run(
        &dir,
        &synthetic_run(ENVS, 15, 42),
        &synthetic_samples(&catalogue(), ENVS, 15, 42),
    );
    let r = render(&dir, None, None).unwrap();
    for f in ["summary.csv", "overhead.csv", "report.md", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    for p in [
        "overhead",
        "distributions",
        "io_latency",
        "mem_latency",
        "drift",
    ] {
        for ext in ["svg", "png"] {
            let path = dir.join("plots").join(format!("{p}.{ext}"));
            assert!(
                std::fs::metadata(&path).unwrap().len() > 1000,
                "{} too small",
                path.display()
            );
        }
    }
    println!("{}", terminal_table(&r.analysis, false));
}
