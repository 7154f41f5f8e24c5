//! The verifier's backpressure (every partition paused while too many checks are in flight; parts
//! of a workspace at its share of that bound set aside and read again once it has room), and the
//! gauges of what is held.

use chrono::{DateTime, Utc};

use super::{State, IDS_IN_FLIGHT_PER_CHECK, IN_FLIGHT_PER_CHECK};
use crate::source::Source;

impl State {
    /// Past [`IN_FLIGHT_PER_CHECK`] × `max_concurrent_checks` checks in flight (running, waiting
    /// for their project's query or for Kafka's acknowledgement), or [`IDS_IN_FLIGHT_PER_CHECK`] ×
    /// `max_concurrent_checks` trace ids in them, pause every partition; resume (all but those
    /// waiting on a head) below half of both.
    pub(super) fn backpressure(&mut self, src: &mut Source) {
        if let Some(share) = self.share {
            // Parts set aside go on once their workspaces are down to half their share.
            let load = &self.load;
            src.read_aside_again(|w| load.get(w).copied().unwrap_or(0) * 2 < share);
        }
        let permits = self.v.config.verifier.max_concurrent_checks;
        let (max, max_ids) = (permits * IN_FLIGHT_PER_CHECK, permits * IDS_IN_FLIGHT_PER_CHECK);
        let (n, ids) = (self.in_flight.len(), self.ids_in_flight);
        let want = if src.paused() {
            n * 2 > max || ids * 2 > max_ids
        } else {
            n >= max || ids >= max_ids
        };
        src.pause_all(want);
    }

    /// Whether `workspace` holds its share of the in-flight bound.
    pub(super) fn at_share(&self, workspace: &str) -> bool {
        let load = self.load.get(workspace).copied().unwrap_or(0);
        self.share.is_some_and(|share| load >= share)
    }

    pub(super) fn update_gauges(&self) {
        let now = Utc::now();
        let warning = chrono::TimeDelta::from_std(self.v.config.verifier.deadline_warning).unwrap_or_default();
        let held = self
            .parked
            .all()
            .map(|(_, p)| (p.accepted_at, p.deadline))
            .chain(self.in_flight.values().flatten().map(|h| (h.accepted_at, h.deadline)));
        let (mut oldest, mut at_risk) = (None::<DateTime<Utc>>, 0);
        for (accepted_at, deadline) in held {
            oldest = Some(oldest.map_or(accepted_at, |o| o.min(accepted_at)));
            if deadline - now < warning {
                at_risk += 1;
            }
        }
        let m = &self.v.metrics;
        let age = oldest.map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0);
        m.oldest_unverified_seconds.set(age);
        m.deadline_at_risk.set(at_risk);
    }
}
