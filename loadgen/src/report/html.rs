//! `report.html`: one self-contained file (inline CSS, inline SVG, no
//! script, nothing fetched), written as well-formed XML so that tests can
//! parse it and any viewer can open it offline.

use std::fmt::Write as _;

use super::document::{Align, Block, Document, Table};

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:84em;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f3f3f3}\
td.r{text-align:right;font-variant-numeric:tabular-nums}\
tbody tr:nth-child(even){background:#fafafa}\
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}\
figcaption{font-weight:bold;margin-bottom:.3em}\
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}\
div.wide{overflow-x:auto;max-width:100%}figure{max-width:100%}figure svg{max-width:100%;height:auto}\
nav ul{columns:2}";

/// The document as HTML.
pub fn render(doc: &Document) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n");
    out.push_str("<meta charset=\"utf-8\"/>\n");
    let _ = writeln!(out, "<title>{}</title>", esc(&doc.title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>{}</h1>", esc(&doc.title));
    let ids = heading_ids(doc);
    out.push_str(&contents(doc, &ids));
    for (block, id) in doc.blocks.iter().zip(&ids) {
        match block {
            Block::Heading(level, text) => match id {
                Some(id) => {
                    let _ = writeln!(out, "<h{level} id=\"{id}\">{}</h{level}>", esc(text));
                }
                None => {
                    let _ = writeln!(out, "<h{level}>{}</h{level}>", esc(text));
                }
            },
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", inline(text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", inline(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => out.push_str(&table(t)),
            Block::Chart(c) => {
                let _ = writeln!(
                    out,
                    "<figure id=\"chart-{}\">\n<figcaption>{}</figcaption>\n{}\n</figure>",
                    esc(c.file.trim_end_matches(".svg")),
                    esc(&c.title),
                    strip_xml_declaration(&c.svg).trim()
                );
            }
            Block::Preformatted(text) => {
                let _ = writeln!(out, "<pre>{}</pre>", esc(text));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// A unique id for each level-2 heading (the sections the contents link to).
fn heading_ids(doc: &Document) -> Vec<Option<String>> {
    let mut used = std::collections::BTreeSet::new();
    doc.blocks
        .iter()
        .map(|b| match b {
            Block::Heading(2, text) => {
                let base = slug(text);
                let mut id = base.clone();
                let mut n = 2;
                while !used.insert(id.clone()) {
                    id = format!("{base}-{n}");
                    n += 1;
                }
                Some(id)
            }
            _ => None,
        })
        .collect()
}

/// Links to the level-2 sections.
fn contents(doc: &Document, ids: &[Option<String>]) -> String {
    let mut out = String::from("<nav>\n<ul>\n");
    for (block, id) in doc.blocks.iter().zip(ids) {
        if let (Block::Heading(_, text), Some(id)) = (block, id) {
            let _ = writeln!(out, "<li><a href=\"#{id}\">{}</a></li>", esc(text));
        }
    }
    out.push_str("</ul>\n</nav>\n");
    out
}

/// A table inside a box that scrolls sideways on its own when the table is
/// wider than the page (the settings of many scenarios), so the page
/// itself never does.
fn table(t: &Table) -> String {
    let mut out = String::from("<div class=\"wide\">\n<table>\n<thead><tr>");
    for h in &t.header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = match t.align.get(i) {
                Some(Align::Right) => " class=\"r\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", inline(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
    out
}

/// Text escaped for HTML and XML alike.
pub fn esc(s: &str) -> String {
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

/// Text escaped, with each in-page link `[text](#anchor)` (the Markdown
/// the report's text carries) made an `<a>`; anything else stays text.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let Some((text, anchor, len)) = in_page_link(&rest[open..]) else {
            out.push_str(&esc(&rest[..=open]));
            rest = &rest[open + 1..];
            continue;
        };
        out.push_str(&esc(&rest[..open]));
        let _ = write!(out, "<a href=\"{}\">{}</a>", esc(anchor), esc(text));
        rest = &rest[open + len..];
    }
    out.push_str(&esc(rest));
    out
}

/// `[text](#anchor)` or `[text](folder/report.html)` (the runs index) at
/// the start of `s`: the text, the target and the link's length in bytes.
fn in_page_link(s: &str) -> Option<(&str, &str, usize)> {
    if let Some(link) = report_link(s) {
        return Some(link);
    }
    let close = s.find("](#")?;
    let text = &s[1..close];
    if text.contains(['[', ']']) {
        return None;
    }
    let after = &s[close + 3..];
    let end = after.find(')')?;
    let anchor = &after[..end];
    if anchor.is_empty()
        || !anchor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    Some((text, &s[close + 2..close + 3 + end], close + 3 + end + 1))
}

/// `[text](folder/report.html)`: a run's report, relative to the index,
/// in a folder name of letters, digits, `-`, `_` and `.` (never `..`).
fn report_link(s: &str) -> Option<(&str, &str, usize)> {
    let close = s.find("](")?;
    let text = &s[1..close];
    let after = &s[close + 2..];
    let end = after.find(')')?;
    let target = &after[..end];
    let folder = target.strip_suffix("/report.html")?;
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if text.contains(['[', ']']) || folder.is_empty() || folder == ".." || !folder.chars().all(safe)
    {
        return None;
    }
    Some((text, target, close + 2 + end + 1))
}

/// An id for a heading: lower case, letters, digits and dashes.
pub(super) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// An SVG document inlined in HTML must not carry `<?xml ...?>`.
fn strip_xml_declaration(svg: &str) -> &str {
    let t = svg.trim_start();
    match (t.starts_with("<?xml"), t.find("?>")) {
        (true, Some(end)) => &t[end + 2..],
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_slugged() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(slug("Scenario feed-100"), "scenario-feed-100");
        assert_eq!(strip_xml_declaration("<?xml v?>\n<svg/>"), "\n<svg/>");
    }

    #[test]
    fn in_page_links_become_anchors_and_nothing_else_does() {
        assert_eq!(
            inline("p99 3ms ([feed-100](#scenario-feed-100)) & [x](http://e)"),
            "p99 3ms (<a href=\"#scenario-feed-100\">feed-100</a>) &amp; [x](http://e)"
        );
        assert_eq!(inline("[a] [b](#c"), "[a] [b](#c");
        assert_eq!(
            inline("[run-1](run-1/report.html) [x](../report.html) [y](a/b/report.html)"),
            "<a href=\"run-1/report.html\">run-1</a> [x](../report.html) [y](a/b/report.html)"
        );
    }
}
