//! What the book's events hold of the in-flight bound.

use crate::intake::FastMap;

/// Ids in flight in all; and per workspace its load: ids plus one per event, as the bound counts.
#[derive(Default)]
pub(super) struct InFlight {
    pub ids: usize,
    pub load: FastMap<String, usize>,
}

impl InFlight {
    pub fn add(&mut self, workspace: &str, ids: usize, events: usize) {
        self.ids += ids;
        match self.load.get_mut(workspace) {
            Some(c) => *c += ids + events,
            None => {
                self.load.insert(workspace.to_owned(), ids + events);
            }
        }
    }

    pub fn sub(&mut self, workspace: &str, ids: usize, events: usize) {
        self.ids -= ids;
        if let Some(c) = self.load.get_mut(workspace) {
            *c -= ids + events;
        }
    }
}
