//! Helpers of the load generator's integration tests that start other
//! servers: a tiny server with its own field names, and the Node baseline.
#![allow(dead_code)]

pub mod fields_server;
pub mod node;
