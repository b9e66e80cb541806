//! The scenarios beyond the feed (chat, echo, faults): shown with the same
//! plain-text tables the terminal prints, so the two never disagree.
//! Their charts follow the table ([`super::extra_charts`]). The connection-limit scenario has its
//! own section ([`super::limit`]). Sections are an enum (`result::Section`),
//! so a new kind cannot be added without this report deciding how to show it.

use super::document::{Block, Document};
use super::error::ReportError;
use super::extra_charts;
use super::text::extras_summary;
use crate::result::{RunResult, Section};

/// Adds a section when the run holds chat, echo or faults results.
pub fn push(doc: &mut Document, r: &RunResult) -> Result<(), ReportError> {
    let mut extras = r.clone();
    extras.scenarios.retain(|s| match s.section {
        Section::Chat(_) | Section::Echo(_) | Section::Faults(_) => true,
        Section::Feed | Section::Limit(_) => false,
    });
    if !extras.scenarios.is_empty() {
        let text = extras_summary(&extras);
        doc.push(Block::Heading(2, "Chat, echo and faults".into()));
        doc.push(Block::Paragraph(
            "Times in milliseconds; see the README for what each column measures.".into(),
        ));
        doc.push(Block::Preformatted(text.trim_end().to_string()));
        doc.push(Block::Heading(3, "Charts".into()));
        // Files named by kind, numbered from the second scenario of a kind
        // on (a merged run may hold two).
        let mut seen = std::collections::BTreeMap::<&str, usize>::new();
        for s in &extras.scenarios {
            let Some(kind) = s.section.name() else {
                continue;
            };
            let n = seen.entry(kind).or_insert(0);
            *n += 1;
            let stem = if *n == 1 {
                kind.to_string()
            } else {
                format!("{kind}-{n}")
            };
            let charts = match &s.section {
                Section::Chat(c) => extra_charts::chat(c, &stem)?,
                Section::Echo(e) => extra_charts::echo(e, &stem)?,
                Section::Faults(f) => extra_charts::faults(f, &stem)?,
                Section::Feed | Section::Limit(_) => Vec::new(),
            };
            for chart in charts {
                doc.push(Block::Chart(chart));
            }
        }
    }
    Ok(())
}
