//! The stacks measured side by side (`--stacks`): this project's actix
//! server and the two baselines, each serving the same feed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::wire::Wire;

/// One server stack.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    /// This project's feed server (actix-web).
    Actix,
    /// `baselines/bare`: minimal tokio, no framework.
    Bare,
    /// `baselines/node`: Express 5 SSE and Node `ws`, the seed team's design.
    Node,
}

impl Stack {
    pub const ALL: [Stack; 3] = [Stack::Actix, Stack::Bare, Stack::Node];

    pub fn name(self) -> &'static str {
        match self {
            Stack::Actix => "actix",
            Stack::Bare => "bare",
            Stack::Node => "node",
        }
    }

    /// What serves a wire on this stack, as a report names it.
    pub fn serving(self, wire: Wire) -> &'static str {
        match (self, wire.is_ws()) {
            (Stack::Actix, _) => "actix-web",
            (Stack::Bare, _) => "bare tokio",
            (Stack::Node, false) => "Express SSE",
            (Stack::Node, true) => "Node ws",
        }
    }

    /// The wires the stack serves: the baselines speak HTTP/1.1 only.
    pub fn serves(self, wire: Wire) -> bool {
        match self {
            Stack::Actix => Wire::ALL.contains(&wire),
            Stack::Bare | Stack::Node => matches!(wire, Wire::SseH1 | Wire::WsH1),
        }
    }

    /// `actix,bare,node` into stacks, in that order, each once.
    pub fn parse_list(s: &str) -> Result<Vec<Stack>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                out.extend(Stack::ALL);
            } else {
                out.push(part.parse()?);
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err("no stack named; use actix, bare, node or all".into());
        }
        Ok(out)
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stack {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stack::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown stack `{s}`: use actix, bare, node or all"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_order() {
        assert_eq!(
            Stack::parse_list("node, actix,node"),
            Ok(vec![Stack::Actix, Stack::Node])
        );
        assert_eq!(Stack::parse_list("all").unwrap().len(), 3);
        assert!(Stack::parse_list("nginx").unwrap_err().contains("nginx"));
        assert!(Stack::Node.serves(Wire::WsH1) && !Stack::Node.serves(Wire::SseH2));
        assert_eq!(Stack::Node.serving(Wire::SseH1), "Express SSE");
    }
}
