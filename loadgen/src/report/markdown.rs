//! `report.md`: GitHub-flavoured Markdown that also reads well as plain
//! text, so tables are padded into aligned columns and charts are linked
//! images with their title above them.

use std::fmt::Write as _;

use super::document::{Align, Block, Document, Table};

/// The folder, beside `report.md`, that holds its charts.
pub const CHART_DIR: &str = "charts";

/// The document as Markdown.
pub fn render(doc: &Document) -> String {
    let mut out = format!("# {}\n", doc.title);
    for block in &doc.blocks {
        out.push('\n');
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}", "#".repeat(usize::from(*level)));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "{text}");
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
            }
            Block::Table(t) => out.push_str(&table(t)),
            Block::Chart(c) => {
                let _ = writeln!(
                    out,
                    "**{}**\n\n![{}]({CHART_DIR}/{})",
                    c.title, c.title, c.file
                );
            }
            Block::Preformatted(text) => {
                let _ = writeln!(out, "```text\n{text}\n```");
            }
        }
    }
    out
}

/// A pipe table with columns padded to one width, readable unrendered.
pub fn table(t: &Table) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let header: Vec<String> = t.header.iter().map(|h| cell(h)).collect();
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(3)).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let align = |i: usize| t.align.get(i).copied().unwrap_or(Align::Left);
    let line = |cells: &[String]| {
        let mut l = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            match align(i) {
                Align::Left => {
                    let _ = write!(l, " {c}{} |", " ".repeat(pad));
                }
                Align::Right => {
                    let _ = write!(l, " {}{c} |", " ".repeat(pad));
                }
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(&header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        match align(i) {
            Align::Left => {
                let _ = write!(out, " {} |", "-".repeat(*w));
            }
            Align::Right => {
                let _ = write!(out, " {}: |", "-".repeat(w - 1));
            }
        }
    }
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up() {
        let mut t = Table::numeric(&["wire", "p99"]);
        t.rows.push(vec!["sse-h1".into(), "1.2ms".into()]);
        t.rows.push(vec!["a|b".into(), "10µs".into()]);
        assert_eq!(
            table(&t),
            "| wire   |   p99 |\n\
             | ------ | ----: |\n\
             | sse-h1 | 1.2ms |\n\
             | a\\|b   |  10µs |\n"
        );
    }
}
