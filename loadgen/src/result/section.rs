//! What a scenario measured beyond the feed's wires: one section at most,
//! as an enum, so a reader matches on it instead of probing four optionals.
//!
//! In `result.json` a section is one field of its scenario named after it
//! (`"chat": {...}`), exactly as when they were four optional fields: files
//! written before and after read the same. A file holding two sections in
//! one scenario is refused (no runner ever wrote one).

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::chat::ChatResult;
use super::echo::EchoResult;
use super::faults::FaultsResult;
use super::limit::LimitResult;

/// A scenario's section beyond the feed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "SectionFields")]
pub enum Section {
    /// A feed scenario: its figures are the scenario's `wires`.
    #[default]
    Feed,
    /// Chat-style streamed answers (`scenarios::chat`).
    Chat(ChatResult),
    /// Round trips (`scenarios::echo`).
    Echo(EchoResult),
    /// Reconnect and resume under drops (`scenarios::faults`).
    Faults(FaultsResult),
    /// The six-connection limit, browser model (`limit`).
    Limit(LimitResult),
}

impl Section {
    /// The field name in `result.json`; `None` for a feed scenario.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Section::Feed => None,
            Section::Chat(_) => Some("chat"),
            Section::Echo(_) => Some("echo"),
            Section::Faults(_) => Some("faults"),
            Section::Limit(_) => Some("limit"),
        }
    }
}

/// Written into its scenario's object (`#[serde(flatten)]` there): one
/// field named after the section, none for the feed.
/// The schema of what [`Section`]'s `Serialize` writes: at most one of
/// the optional fields (a feed scenario has none).
impl schemars::JsonSchema for Section {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Section".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        SectionFields::json_schema(generator)
    }
}

impl Serialize for Section {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(usize::from(self.name().is_some())))?;
        match self {
            Section::Feed => {}
            Section::Chat(c) => map.serialize_entry("chat", c)?,
            Section::Echo(e) => map.serialize_entry("echo", e)?,
            Section::Faults(f) => map.serialize_entry("faults", f)?,
            Section::Limit(l) => map.serialize_entry("limit", l)?,
        }
        map.end()
    }
}

/// The fields a section may be read from.
#[derive(Deserialize, schemars::JsonSchema)]
struct SectionFields {
    #[serde(default)]
    chat: Option<ChatResult>,
    #[serde(default)]
    echo: Option<EchoResult>,
    #[serde(default)]
    faults: Option<FaultsResult>,
    #[serde(default)]
    limit: Option<LimitResult>,
}

impl TryFrom<SectionFields> for Section {
    type Error = String;

    fn try_from(f: SectionFields) -> Result<Section, String> {
        let mut found = Vec::new();
        if let Some(c) = f.chat {
            found.push(Section::Chat(c));
        }
        if let Some(e) = f.echo {
            found.push(Section::Echo(e));
        }
        if let Some(x) = f.faults {
            found.push(Section::Faults(x));
        }
        if let Some(l) = f.limit {
            found.push(Section::Limit(l));
        }
        if found.len() > 1 {
            let names: Vec<&str> = found.iter().filter_map(Section::name).collect();
            return Err(format!(
                "a scenario holds the sections {}: one scenario measures one thing",
                names.join(" and ")
            ));
        }
        Ok(found.pop().unwrap_or_default())
    }
}
