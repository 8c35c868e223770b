//! The report in a real browser: renders a synthetic run, opens `report.html` in headless
//! Chromium (Debian's `chromium`, installed by scripts/setup), and checks that every figure
//! loads with a non-zero size, that the page logs nothing to the console, loads nothing
//! from outside its directory, has working contents links and fits 1280 px; saves a
//! full-page screenshot (target/tmp/browser/report-1280.png). A copy of the page with a
//! deliberately broken image path must fail the same check.
//!
//! Chromium runs with networking features off and a throw-away profile; every run is
//! bounded by `timeout`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{catalogue, store_run, synthetic_run, synthetic_samples};
use isobench::report::render;

const ENVS: &[&str] = &["native", "native-b", "container", "vm"];
const WIDTH: u32 = 1280;

/// Appended to a copy of the page: once everything has loaded, writes what it measured
/// into `<pre id="isobench-check">` (read from the dumped DOM) and logs a console error
/// for every figure that did not load.
const CHECK_SCRIPT: &str = r##"<script>
window.addEventListener('load', function () {
  var failed = [];
  var figures = Array.prototype.map.call(document.querySelectorAll('figure'), function (f, i) {
    var el = f.querySelector('svg, img');
    if (!el) { failed.push(i); return { index: i, tag: 'none', width: 0, height: 0, loaded: false }; }
    var r = el.getBoundingClientRect();
    var tag = el.tagName.toLowerCase();
    var loaded = tag === 'img' ? (el.complete && el.naturalWidth > 0) : el.childElementCount > 0;
    if (!loaded || r.width <= 0 || r.height <= 0) failed.push(i);
    return { index: i, tag: tag, width: r.width, height: r.height, loaded: loaded };
  });
  failed.forEach(function (i) { console.error('isobench check: figure ' + i + ' did not load'); });
  var broken_links = Array.prototype.filter.call(document.querySelectorAll('a[href^="#"]'), function (a) {
    return !document.getElementById(a.getAttribute('href').slice(1));
  }).map(function (a) { return a.getAttribute('href'); });
  // Sort the first workload table by its last column (an environment's overhead).
  var sorted_first = null;
  var table = document.querySelector('table.sortable');
  if (table) {
    var ths = table.querySelectorAll('thead th');
    ths[ths.length - 1].click();
    sorted_first = table.tBodies[0].rows[0].cells[0].textContent;
  }
  var resources = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var out = document.createElement('pre');
  out.id = 'isobench-check';
  out.textContent = JSON.stringify({
    figures: figures,
    broken_links: broken_links,
    resources: resources,
    toc_links: document.querySelectorAll('nav.toc a').length,
    sorted_first: sorted_first,
    scroll_width: document.documentElement.scrollWidth,
    page_height: document.documentElement.scrollHeight
  });
  document.body.appendChild(out);
});
</script>
"##;

/// What the check measured in the browser.
#[derive(Debug, serde::Deserialize)]
struct Check {
    figures: Vec<FigureCheck>,
    broken_links: Vec<String>,
    resources: Vec<String>,
    toc_links: usize,
    /// The first workload after sorting the first table by its last column.
    sorted_first: Option<String>,
    scroll_width: f64,
    page_height: f64,
    /// Console lines Chromium logged (filled in from stderr).
    #[serde(default)]
    console: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct FigureCheck {
    index: usize,
    tag: String,
    width: f64,
    height: f64,
    loaded: bool,
}

impl FigureCheck {
    fn ok(&self) -> bool {
        self.loaded && self.width > 0.0 && self.height > 0.0
    }
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("the browser test needs Debian's chromium: run scripts/setup as root (it installs it) or apt-get install chromium");
}

/// Chromium's headless flags: no sandbox (CI runs as root), no GPU, a throw-away profile,
/// and none of its background networking.
fn headless(profile: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("120").arg(chromium()).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--no-pings",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

/// Opens `page` (a report.html beside its plots/) with the check script appended; returns
/// what it measured and the console lines.
fn check_in_browser(page: &Path, work: &Path) -> Check {
    let html = std::fs::read_to_string(page).unwrap();
    let checked = page.with_file_name("isobench-check.html");
    let body_end = html.rfind("</body>").expect("the page has a </body>");
    std::fs::write(
        &checked,
        format!("{}{CHECK_SCRIPT}{}", &html[..body_end], &html[body_end..]),
    )
    .unwrap();
    let out = headless(&work.join("profile-dom"))
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--window-size={WIDTH},900"))
        .arg("--dump-dom")
        .arg(file_url(&checked))
        .output()
        .expect("starting chromium");
    let _ = std::fs::remove_file(&checked);
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium --dump-dom failed ({}): {stderr}",
        out.status
    );
    let start = dom
        .find("<pre id=\"isobench-check\">")
        .unwrap_or_else(|| panic!("the check script did not run; chromium said: {stderr}"));
    let json = &dom[start + "<pre id=\"isobench-check\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let mut check: Check = serde_json::from_str(&json).unwrap();
    check.console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    check
}

/// Saves a full-page screenshot of `page` at 1280 px wide.
fn screenshot(page: &Path, height: u32, png: &Path, work: &Path) {
    let out = headless(&work.join("profile-shot"))
        .arg(format!("--window-size={WIDTH},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(file_url(page))
        .output()
        .expect("starting chromium");
    assert!(
        out.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 50_000,
        "screenshot {} bytes",
        bytes.len()
    );
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A rendered synthetic run with every environment; returns (run dir, figures rendered).
fn rendered_run(name: &str) -> (PathBuf, usize) {
    let dir = fresh_dir(name);
    store_run(
        &dir,
        &synthetic_run(ENVS, 12, 42),
        &synthetic_samples(&catalogue(), ENVS, 12, 42),
    );
    let r = render(&dir, None, None).unwrap();
    let figures = r
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
        .count();
    (dir, figures)
}

#[test]
fn the_report_opens_in_chromium_with_every_figure_and_no_console_errors() {
    let (dir, figures) = rendered_run("browser-run");
    let work = fresh_dir("browser");
    let check = check_in_browser(&dir.join("report.html"), &work);
    assert_eq!(
        check.figures.len(),
        figures,
        "every figure is on the page: {check:?}"
    );
    for f in &check.figures {
        assert!(f.ok(), "figure {} ({}) did not load: {f:?}", f.index, f.tag);
    }
    // The headline comes first and is drawn wide enough to read.
    assert!(check.figures[0].width > 900.0, "{:?}", check.figures[0]);
    assert!(
        check.console.is_empty(),
        "console messages: {:#?}",
        check.console
    );
    assert!(check.broken_links.is_empty(), "{:?}", check.broken_links);
    assert!(check.toc_links > 8, "a table of contents: {check:?}");
    // The verdict table sorted by vm's overhead, best first: cpu.fp, where vm is 2% faster.
    assert_eq!(check.sorted_first.as_deref(), Some("cpu.fp"), "{check:?}");
    assert!(
        check.resources.iter().all(|r| r.starts_with("file://")),
        "nothing loaded from outside: {:?}",
        check.resources
    );
    assert!(
        check.scroll_width <= f64::from(WIDTH),
        "the page fits {WIDTH} px (scroll width {})",
        check.scroll_width
    );
    let height = (check.page_height.ceil() as u32).clamp(900, 16_000);
    screenshot(
        &dir.join("report.html"),
        height,
        &work.join("report-1280.png"),
        &work,
    );
}

#[test]
fn a_broken_image_path_fails_the_check() {
    let (dir, _) = rendered_run("browser-broken");
    let work = fresh_dir("browser-broken-work");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    // The headline figure as an image: first at its real path (loads), then at a wrong one.
    let svg_start = html.find("<figure>\n<svg").expect("an inline figure") + "<figure>\n".len();
    let svg_end = svg_start + html[svg_start..].find("</svg>").unwrap() + "</svg>".len();
    let with_img = |src: &str| {
        format!(
            "{}<img src=\"{src}\" alt=\"headline\">{}",
            &html[..svg_start],
            &html[svg_end..]
        )
    };
    let good = dir.join("report-img.html");
    std::fs::write(&good, with_img("plots/headline.png")).unwrap();
    let ok = check_in_browser(&good, &work);
    assert_eq!(ok.figures[0].tag, "img");
    assert!(
        ok.figures[0].ok(),
        "the real path loads: {:?}",
        ok.figures[0]
    );
    assert!(ok.console.is_empty(), "{:#?}", ok.console);

    let broken = dir.join("report-broken.html");
    std::fs::write(&broken, with_img("plots/no-such-figure.png")).unwrap();
    let bad = check_in_browser(&broken, &work);
    assert!(
        !bad.figures[0].ok(),
        "a missing image must fail: {:?}",
        bad.figures[0]
    );
    assert!(
        bad.console
            .iter()
            .any(|l| l.contains("isobench check: figure 0 did not load")),
        "and show on the console: {:#?}",
        bad.console
    );
    assert!(bad.figures[1..].iter().all(FigureCheck::ok));
}
