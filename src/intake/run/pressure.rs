//! The intake's backpressure: the input paused past the in-flight bound, events of a workspace at
//! its share of it set aside and read again once it has room.

use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::{Consumer_, State};
use crate::aside::HELD_OFFSETS_MAX;

impl State {
    /// Past the in-flight bound, pause the input partitions; resume below 80 % of it. Polling goes on.
    pub(super) fn backpressure(&mut self, consumer: &Consumer_) {
        self.read_aside_again(consumer);
        let max = self.intake.config.intake.max_in_flight_ids;
        let load = self.book.ids_in_flight() + self.book.messages();
        let held = self.fence.in_flight();
        let want_paused = if self.paused {
            load * 5 > max * 4 || held * 5 > HELD_OFFSETS_MAX * 4
        } else {
            load >= max || held >= HELD_OFFSETS_MAX
        };
        if want_paused != self.paused {
            self.set_paused(consumer, want_paused, max);
        }
        // Selectors being resolved fetch their next page only while the input could flow.
        let room = !self.paused;
        self.tx.room.send_if_modified(|r| std::mem::replace(r, room) != room);
        // Paused with no call and no output in flight, only open batches: they cannot grow, and
        // waiting for their linger only stalls. Send the fullest now (more of them follow, one per
        // turn, until the load is low enough to resume).
        if self.paused && self.calls_in_flight == 0 && self.outputs_in_flight == 0 {
            if let Some(batch) = self.coalescer.take_fullest() {
                tracing::debug!(
                    ids = batch.ids.len(),
                    "input paused with only open batches: sending the fullest"
                );
                self.send_batch(batch);
            }
        }
    }

    /// Seeks back the partitions whose events set aside may go on now: their workspaces are down
    /// to half their share.
    fn read_aside_again(&mut self, consumer: &Consumer_) {
        let Some(share) = self.share else { return };
        let book = &self.book;
        let due = self
            .aside
            .due(|w| book.load_of(w) * 2 < share, std::time::Instant::now());
        for (partition, from) in due {
            let topic = &self.intake.config.topics.requests;
            tracing::info!(partition, from, "reading events set aside again");
            let seek = consumer.seek(topic, partition, rdkafka::Offset::Offset(from), Duration::from_secs(5));
            if let Err(e) = seek {
                // Sought again in a while (`Aside::due`); a revocation gives the offsets back.
                tracing::warn!(partition, from, error = %e, "cannot read events set aside again yet");
            }
        }
    }

    pub(super) fn set_paused(&mut self, consumer: &Consumer_, pause: bool, max: usize) {
        let result = consumer.assignment().and_then(|tpl| {
            if pause {
                consumer.pause(&tpl)
            } else {
                consumer.resume(&tpl)
            }
        });
        match result {
            Ok(()) => {
                self.paused = pause;
                let (ids, events) = (self.book.ids_in_flight(), self.book.messages());
                tracing::info!(paused = pause, ids, events, max, "input backpressure");
            }
            Err(e) => tracing::warn!(error = %e, "pausing/resuming the input failed"),
        }
    }
}
