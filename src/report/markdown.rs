//! Renders the report [`Document`] as Markdown (`report.md`); figures link the PNGs.

use super::document::{Block, Document, Table};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(t: &Table, out: &mut String) {
    out.push_str(&format!(
        "| {} |\n",
        t.header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    let sep: Vec<&str> = (0..t.header.len())
        .map(|i| {
            if t.right_aligned.contains(&i) {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", sep.join(" | ")));
    for r in &t.rows {
        out.push_str(&format!(
            "| {} |\n",
            r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
}

/// `report.md`.
pub fn markdown(doc: &Document) -> String {
    let mut out = format!("# {}\n", doc.title);
    for b in &doc.blocks {
        out.push('\n');
        match b {
            Block::Heading(level, text) => {
                out.push_str(&format!("{} {text}\n", "#".repeat(usize::from(*level) + 1)));
            }
            Block::Paragraph(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {i}\n"));
                }
            }
            Block::Table(t) => table(t, &mut out),
            Block::Figure(f) => {
                out.push_str(&format!(
                    "![{}]({})\n\n{} ([SVG]({}))\n",
                    f.title, f.png_path, f.caption, f.svg_path
                ));
            }
        }
    }
    out
}
