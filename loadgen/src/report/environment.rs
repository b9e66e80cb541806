//! The environment block: the machine, the build and every setting of the
//! server and the load generator, so that any figure can be reproduced.
//!
//! Settings are listed from the serialized scenario and server setup, not
//! field by field, so a setting added to either later shows up here
//! without anyone remembering to add it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::document::{Align, Block, Document, Table};
use super::format::{memory, num};
use crate::result::RunResult;

/// Adds the environment section.
pub fn push(doc: &mut Document, r: &RunResult) {
    let e = &r.environment;
    doc.push(Block::Heading(2, "Environment".into()));
    let known = |s: &str| {
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s.to_string()
        }
    };
    doc.push(Block::Table(Table::key_value(vec![
        ("CPU".into(), known(&e.cpu_model)),
        ("cores".into(), e.cores.to_string()),
        ("memory".into(), memory(e.memory_bytes)),
        ("kernel".into(), known(&e.kernel)),
        ("open-file limit".into(), e.open_files_limit.to_string()),
        ("rustc".into(), known(&e.rustc)),
        ("git commit".into(), known(&e.git_commit)),
        ("tool".into(), r.tool.clone()),
        ("started".into(), r.started_at.clone()),
        ("finished".into(), r.finished_at.clone()),
    ])));
    doc.push(Block::Paragraph("Command line:".into()));
    doc.push(Block::Preformatted(shell_words(&e.command_line)));
    if r.scenarios.is_empty() {
        return;
    }
    doc.push(Block::Heading(3, "Settings per scenario".into()));
    doc.push(Block::Table(settings(r)));
}

/// One row per setting, one column per scenario.
fn settings(r: &RunResult) -> Table {
    let columns: Vec<BTreeMap<String, String>> = r
        .scenarios
        .iter()
        .map(|s| {
            let mut m = BTreeMap::new();
            flatten("scenario", &s.scenario, &mut m);
            flatten("server", &s.server, &mut m);
            // Shown with its config text in "Through a proxy".
            m.remove("server.edge");
            m
        })
        .collect();
    let mut keys: Vec<&String> = columns.iter().flat_map(|c| c.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut header = vec!["setting".to_string()];
    header.extend(r.scenarios.iter().map(|s| s.scenario.name.clone()));
    let mut t = Table {
        align: vec![Align::Left; header.len()],
        header,
        rows: Vec::new(),
    };
    for key in keys {
        let mut row = vec![key.clone()];
        row.extend(
            columns
                .iter()
                .map(|c| c.get(key).cloned().unwrap_or_else(|| "-".into())),
        );
        t.rows.push(row);
    }
    t
}

/// `prefix.field` → value, for every field of a serializable struct.
fn flatten(prefix: &str, value: &impl Serialize, out: &mut BTreeMap<String, String>) {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(value) {
        for (k, v) in fields {
            out.insert(format!("{prefix}.{k}"), show(&v));
        }
    }
}

fn show(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "-".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .or_else(|| n.as_i64().map(|i| i.to_string()))
            .unwrap_or_else(|| num(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

/// The command line as one could paste it into a shell.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_what_needs_it() {
        let args = ["loadgen", "run", "--name", "my run", "it's"].map(String::from);
        assert_eq!(shell_words(&args), r"loadgen run --name 'my run' 'it'\''s'");
    }
}
