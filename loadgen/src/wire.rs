//! The wires the workbench compares: one definition, in the server library,
//! so `/stats`, `result.json` and the command line name them alike.

pub use server::wire::{Protocol, Transport, Wire};

/// The JSON Schema of a [`Wire`] as `result.json` writes it: one of the
/// wire names. `Wire` lives in the server library, which has no reason to
/// know about schemas, so the result types name this type for it.
pub struct WireSchema;

impl schemars::JsonSchema for WireSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Wire".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Wire::EVERY.iter().map(|w| w.name()).collect();
        schemars::json_schema!({
            "description": "A transport over a protocol: sse-h1, sse-h2 (TLS), sse-h2c, ws-h1, ws-h2, ws-h2c.",
            "type": "string",
            "enum": names,
        })
    }
}
