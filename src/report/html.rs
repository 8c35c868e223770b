//! Renders the report [`Document`] as one self-contained HTML page (`report.html`): inline
//! CSS, SVG plots inlined, a table of contents with an anchor per section and per workload
//! (the first row of each workload in a table whose first column is `workload`), tables
//! sortable by a click on a column header (a small inline script), no external resources.

use super::document::{Block, Document, Table};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:1200px;\
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;vertical-align:top}\
th{background:#f0f0f0;text-align:left}td.num{text-align:right;white-space:nowrap}\
tr:nth-child(even) td{background:#fafafa}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\
figcaption{font-size:0.9em;color:#555}\
.tablewrap{overflow-x:auto;max-width:100%}\
th.sortable{cursor:pointer;user-select:none}th.sortable::after{content:' \\2195';color:#999}\
nav.toc{background:#f7f7f7;border:1px solid #ddd;padding:0.5em 1.2em;margin:1em 0;font-size:0.92em}\
nav.toc ul{margin:0.2em 0;padding-left:1.2em}nav.toc li.workloads{margin-top:0.3em}\
nav.toc li.workloads a{margin-right:0.8em;white-space:nowrap}";

/// Sorts a table by the clicked column: numbers (the first one in a cell, `89×` read as a
/// factor) numerically, anything else as text; a second click reverses.
const SORT_SCRIPT: &str = r#"(function () {
  function key(t) {
    var m = t.match(/^[^0-9+\-\u2212]*([+\-\u2212]?[0-9]+(?:\.[0-9]+)?)(\u00d7|%)?/);
    if (!m) return null;
    var v = parseFloat(m[1].replace('\u2212', '-'));
    return m[2] === '\u00d7' ? (v - 1) * 100 : v;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var ths = table.querySelectorAll('thead th');
    ths.forEach(function (th, col) {
      th.classList.add('sortable');
      th.title = 'sort by this column';
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
        ths.forEach(function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir === 1 ? 'asc' : 'desc');
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent;
          var kx = key(x), ky = key(y);
          if (kx !== null && ky !== null && kx !== ky) return (kx - ky) * dir;
          return x.localeCompare(y) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();"#;

/// An anchor name: lower case, runs of anything but letters and digits as one `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The anchor of a workload's first table row.
pub fn workload_anchor(workload: &str) -> String {
    format!("workload-{}", slug(workload))
}

/// Whether `t` lists workloads (its first column is `workload`): its rows get anchors.
fn lists_workloads(t: &Table) -> bool {
    t.header.first().is_some_and(|h| h == "workload")
}

/// The table of contents: the sections, then the workloads of the first workload table.
fn toc(doc: &Document) -> String {
    let mut out =
        String::from("<nav class=\"toc\" id=\"contents\">\n<strong>Contents</strong>\n<ul>\n");
    let mut open_sub = false;
    for b in &doc.blocks {
        if let Block::Heading(level, text) = b {
            let link = format!("<a href=\"#{}\">{}</a>", slug(text), escape(text));
            match level {
                1 => {
                    if open_sub {
                        out.push_str("</ul></li>\n");
                        open_sub = false;
                    } else if out.ends_with("</a>") {
                        out.push_str("</li>\n");
                    }
                    out.push_str(&format!("<li>{link}"));
                }
                _ => {
                    if !open_sub {
                        out.push_str("\n<ul>\n");
                        open_sub = true;
                    }
                    out.push_str(&format!("<li>{link}</li>\n"));
                }
            }
        }
    }
    if open_sub {
        out.push_str("</ul></li>\n");
    } else if out.ends_with("</a>") {
        out.push_str("</li>\n");
    }
    let workloads: Vec<&str> = doc
        .blocks
        .iter()
        .find_map(|b| match b {
            Block::Table(t) if lists_workloads(t) => Some(t),
            _ => None,
        })
        .map(|t| {
            let mut w: Vec<&str> = Vec::new();
            for r in &t.rows {
                if let Some(name) = r.first() {
                    if !w.contains(&name.as_str()) {
                        w.push(name);
                    }
                }
            }
            w
        })
        .unwrap_or_default();
    if !workloads.is_empty() {
        out.push_str("<li class=\"workloads\">Workloads: ");
        for w in workloads {
            out.push_str(&format!(
                "<a href=\"#{}\">{}</a>",
                workload_anchor(w),
                escape(w)
            ));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n</nav>\n");
    out
}

/// Drops the XML declaration a standalone SVG file starts with (invalid inside HTML).
fn inline_svg(svg: &str) -> &str {
    let s = svg.trim_start();
    if s.starts_with("<?xml") {
        s.find("?>").map_or(s, |i| s[i + 2..].trim_start())
    } else {
        s
    }
}

/// `anchored` collects the workloads whose first row already carries an anchor.
fn table(t: &Table, out: &mut String, anchored: &mut Vec<String>) {
    out.push_str("<div class=\"tablewrap\">\n<table class=\"sortable\">\n<thead><tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        match r.first() {
            Some(w) if lists_workloads(t) && !anchored.contains(w) => {
                out.push_str(&format!("<tr id=\"{}\">", workload_anchor(w)));
                anchored.push(w.clone());
            }
            _ => out.push_str("<tr>"),
        }
        for (i, c) in r.iter().enumerate() {
            if t.right_aligned.contains(&i) {
                out.push_str(&format!("<td class=\"num\">{}</td>", escape(c)));
            } else {
                out.push_str(&format!("<td>{}</td>", escape(c)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

/// `report.html`.
pub fn html(doc: &Document) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n{}",
        escape(&doc.title),
        escape(&doc.title),
        toc(doc)
    );
    let mut anchored = Vec::new();
    for b in &doc.blocks {
        match b {
            Block::Heading(level, text) => {
                let l = level + 1;
                out.push_str(&format!(
                    "<h{l} id=\"{}\">{}</h{l}>\n",
                    slug(text),
                    escape(text)
                ));
            }
            Block::Paragraph(text) => out.push_str(&format!("<p>{}</p>\n", escape(text))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", escape(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => table(t, &mut out, &mut anchored),
            Block::Figure(f) => {
                out.push_str(&format!(
                    "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                    inline_svg(&f.svg),
                    escape(&f.caption)
                ));
            }
        }
    }
    out.push_str(&format!(
        "<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::document::Figure;

    #[test]
    fn escapes_and_inlines() {
        let mut d = Document {
            title: "a<b".into(),
            blocks: Vec::new(),
        };
        d.paragraph("x & y");
        d.figure(Figure {
            title: "t".into(),
            png_path: "p.png".into(),
            svg_path: "p.svg".into(),
            svg: "<?xml version=\"1.0\"?>\n<svg></svg>".into(),
            caption: "c".into(),
        });
        let h = html(&d);
        assert!(h.contains("<h1>a&lt;b</h1>"));
        assert!(h.contains("<p>x &amp; y</p>"));
        assert!(h.contains("<figure>\n<svg></svg>"));
        assert!(!h.contains("<?xml"));
        assert!(
            !h.contains("src=") && !h.contains("href=\"http") && !h.contains("url("),
            "self-contained"
        );
    }

    #[test]
    fn contents_and_workload_anchors() {
        let mut d = Document::default();
        d.heading(1, "Verdicts");
        d.table(Table {
            header: vec!["workload".into(), "metric".into()],
            rows: vec![
                vec!["cpu.int".into(), "hash".into()],
                vec!["io.rand".into(), "read_iops".into()],
                vec!["io.rand".into(), "read_p99_us".into()],
            ],
            right_aligned: vec![],
        });
        d.heading(2, "Environments");
        let h = html(&d);
        assert!(h.contains("<h2 id=\"verdicts\">Verdicts</h2>"));
        assert!(h.contains("<a href=\"#environments\">Environments</a>"));
        assert!(h.contains("<a href=\"#workload-io-rand\">io.rand</a>"));
        assert_eq!(
            h.matches("id=\"workload-io-rand\"").count(),
            1,
            "one anchor per workload"
        );
        assert!(h.contains("<table class=\"sortable\">"));
        assert_eq!(slug("Outliers and warm-up"), "outliers-and-warm-up");
    }
}
