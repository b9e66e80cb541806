//! The report as a list of blocks, rendered once to Markdown and once to
//! HTML. Text in blocks is plain: each renderer escapes it for its format.

/// A whole report.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// One piece of a report.
#[derive(Debug, Clone)]
pub enum Block {
    /// A heading of level 2 or 3 (the title is level 1).
    Heading(u8, String),
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
    Table(Table),
    Chart(Chart),
    /// Text shown as is, in a fixed-width font.
    Preformatted(String),
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header row.
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first column is left-aligned and the rest right-aligned
    /// (names, then numbers).
    pub fn numeric(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            align: (0..header.len())
                .map(|i| if i == 0 { Align::Left } else { Align::Right })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// A two-column table of settings.
    pub fn key_value(rows: Vec<(String, String)>) -> Table {
        Table {
            header: vec!["setting".into(), "value".into()],
            align: vec![Align::Left, Align::Left],
            rows: rows.into_iter().map(|(k, v)| vec![k, v]).collect(),
        }
    }
}

/// One SVG chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File name in `charts/`, e.g. `feed-100-latency.svg`.
    pub file: String,
    /// Caption, also the image's alternative text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

impl Document {
    pub fn new(title: String) -> Document {
        Document {
            title,
            blocks: Vec::new(),
        }
    }

    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }

    /// Every chart, in order.
    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Chart(c) => Some(c),
            _ => None,
        })
    }
}
