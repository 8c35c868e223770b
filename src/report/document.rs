//! A tiny document model (headings, paragraphs, tables, figures) so that the report's
//! content is written once and rendered to Markdown and to HTML.

/// One block of the report.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Level 1..=3.
    Heading(u8, String),
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
    Table(Table),
    Figure(Figure),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns to right-align (numbers).
    pub right_aligned: Vec<usize>,
}

/// A plot: the PNG file name (relative to the run directory) for Markdown and the SVG
/// text for inlining in HTML.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    pub png_path: String,
    pub svg_path: String,
    pub svg: String,
    pub caption: String,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Document {
    pub fn heading(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading(level, text.into()));
    }

    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    pub fn list(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    pub fn table(&mut self, table: Table) {
        self.blocks.push(Block::Table(table));
    }

    pub fn figure(&mut self, figure: Figure) {
        self.blocks.push(Block::Figure(figure));
    }
}
