//! What a progress view is told while scenarios run: the binary draws,
//! the library only reports.

use std::sync::Arc;

use super::live::Live;
use crate::result::{Scenario, ServerSetup, WireResult};
use crate::wire::Wire;

/// Hooks for a progress view; the binary draws, the library only reports.
pub trait Observer: Send + Sync {
    fn scenario_started(&self, _scenario: &Scenario, _server: &ServerSetup) {}
    fn wire_started(&self, _scenario: &Scenario, _wire: Wire, _live: Arc<Live>) {}
    fn wire_finished(&self, _result: &WireResult) {}
}

/// An observer that reports nothing.
pub struct Silent;
impl Observer for Silent {}
