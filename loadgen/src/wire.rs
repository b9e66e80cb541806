//! The wires the workbench compares: one definition, in the server library,
//! so `/stats`, `result.json` and the command line name them alike.

pub use server::wire::{Protocol, Transport, Wire};
