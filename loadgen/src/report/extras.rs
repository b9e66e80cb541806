//! The scenarios beyond the feed (chat, echo, faults): shown with the same
//! plain-text tables the terminal prints, so the two never disagree.
//! Charts for them are not drawn yet. The connection-limit scenario has its
//! own section ([`super::limit`]). Sections are an enum (`result::Section`),
//! so a new kind cannot be added without this report deciding how to show it.

use super::document::{Block, Document};
use super::text::extras_summary;
use crate::result::{RunResult, Section};

/// Adds a section when the run holds chat, echo or faults results.
pub fn push(doc: &mut Document, r: &RunResult) {
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
    }
}
