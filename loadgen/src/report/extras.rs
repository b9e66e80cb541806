//! The scenarios beyond the feed (chat, echo, faults): shown with the same
//! plain-text tables the terminal prints, so the two never disagree.
//! Charts for them are not drawn yet. The connection-limit scenario has its
//! own section ([`super::limit`]). A section this report does not know
//! (added to the result later) is named, so nobody takes its absence for
//! an empty result.

use super::document::{Block, Document};
use crate::result::{RunResult, ScenarioResult};

/// Sections the report shows: here with the terminal's tables, and `limit`
/// in its own section.
const SHOWN: [&str; 4] = ["chat", "echo", "faults", "limit"];

/// The names of a scenario's sections beyond the feed (`chat`, `echo`,
/// `faults`, and any added later), read from its serialized form so that a
/// new section is never silently ignored.
pub fn sections_beyond_feed(s: &ScenarioResult) -> Vec<String> {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter(|(k, v)| !matches!(k.as_str(), "scenario" | "server" | "wires") && !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

/// Adds a section when the run holds chat, echo or faults results, and a
/// note for sections the report cannot show.
pub fn push(doc: &mut Document, r: &RunResult) {
    let mut extras = r.clone();
    extras
        .scenarios
        .retain(|s| s.chat.is_some() || s.echo.is_some() || s.faults.is_some());
    if !extras.scenarios.is_empty() {
        let text = crate::scenarios::summary(&extras);
        doc.push(Block::Heading(2, "Chat, echo and faults".into()));
        doc.push(Block::Paragraph(
            "Times in milliseconds; see the README for what each column measures.".into(),
        ));
        doc.push(Block::Preformatted(text.trim_end().to_string()));
    }
    let unknown: Vec<String> = r
        .scenarios
        .iter()
        .flat_map(|s| {
            sections_beyond_feed(s)
                .into_iter()
                .filter(|k| !SHOWN.contains(&k.as_str()))
                .map(move |k| format!("scenario `{}`: section `{k}`", s.scenario.name))
        })
        .collect();
    if !unknown.is_empty() {
        doc.push(Block::Heading(2, "Not shown in this report".into()));
        doc.push(Block::Paragraph(
            "These results are in result.json but this report does not render them yet:".into(),
        ));
        doc.push(Block::List(unknown));
    }
}
