//! The verifier's backpressure: every partition paused while too many checks are in flight, parts
//! of a workspace at its share of that bound set aside and read again once it has room; and the
//! gauges of what is held.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use rdkafka::Offset;

use super::{Consumer_, State, Tp, IN_FLIGHT_PER_CHECK};
use crate::aside::HELD_OFFSETS_MAX;

impl State {
    /// Past [`IN_FLIGHT_PER_CHECK`] × `max_concurrent_checks` checks in flight (running, waiting
    /// for a permit or for Kafka's acknowledgement), pause every partition; resume (all but those
    /// waiting on a head) below half of that.
    pub(super) fn backpressure(&mut self, consumer: &Consumer_) {
        self.read_aside_again(consumer);
        let max = self.v.config.verifier.max_concurrent_checks * IN_FLIGHT_PER_CHECK;
        let n = self.in_flight.len();
        let held = self.fence.in_flight();
        let want = if self.throttled {
            n * 2 > max || held * 5 > HELD_OFFSETS_MAX * 4
        } else {
            n >= max || held >= HELD_OFFSETS_MAX
        };
        if want == self.throttled {
            return;
        }
        self.throttled = want;
        let tps: Vec<Tp> = self
            .assigned
            .iter()
            .filter(|tp| !self.parked.holds(tp))
            .copied()
            .collect();
        self.set_paused(consumer, &tps, want);
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

    /// Seeks back the partitions whose parts set aside may go on now: their workspaces are down to
    /// half their share.
    fn read_aside_again(&mut self, consumer: &Consumer_) {
        let Some(share) = self.share else { return };
        let (workspaces, load) = (&self.workspaces, &self.load);
        let has_room = |w: &str| {
            workspaces
                .binary_search_by(|n| n.as_str().cmp(w))
                .map_or(true, |i| load[i] * 2 < share)
        };
        let due: Vec<(Tp, i64)> = self.aside.due(has_room);
        for ((t, p), from) in due {
            tracing::info!(topic = %self.topics[t], partition = p, from, "reading parts set aside again");
            if let Err(e) = consumer.seek(&self.topics[t], p, Offset::Offset(from), Duration::from_secs(5)) {
                // Tried again on the next turn; a revocation forgets it.
                tracing::warn!(partition = p, from, error = %e, "cannot read parts set aside again yet");
                self.aside.set_aside((t, p), from, "");
            }
        }
    }
}
