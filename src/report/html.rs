//! Renders the report [`Document`] as one self-contained HTML page (`report.html`): inline
//! CSS, SVG plots inlined, no external resources.

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
figcaption{font-size:0.9em;color:#555}";

/// Drops the XML declaration a standalone SVG file starts with (invalid inside HTML).
fn inline_svg(svg: &str) -> &str {
    let s = svg.trim_start();
    if s.starts_with("<?xml") {
        s.find("?>").map_or(s, |i| s[i + 2..].trim_start())
    } else {
        s
    }
}

fn table(t: &Table, out: &mut String) {
    out.push_str("<table>\n<thead><tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if t.right_aligned.contains(&i) {
                out.push_str(&format!("<td class=\"num\">{}</td>", escape(c)));
            } else {
                out.push_str(&format!("<td>{}</td>", escape(c)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// `report.html`.
pub fn html(doc: &Document) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&doc.title),
        escape(&doc.title)
    );
    for b in &doc.blocks {
        match b {
            Block::Heading(level, text) => {
                let l = level + 1;
                out.push_str(&format!("<h{l}>{}</h{l}>\n", escape(text)));
            }
            Block::Paragraph(text) => out.push_str(&format!("<p>{}</p>\n", escape(text))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", escape(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => table(t, &mut out),
            Block::Figure(f) => {
                out.push_str(&format!(
                    "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                    inline_svg(&f.svg),
                    escape(&f.caption)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
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
            !h.contains("src=") && !h.contains("href="),
            "self-contained"
        );
    }
}
