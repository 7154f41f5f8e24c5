//! The intake's backpressure: the input paused past the in-flight bound, events of a workspace at
//! its share of it set aside and read again once it has room.

use super::State;
use crate::source::{Source, HELD_OFFSETS_MAX};

impl State {
    /// Past the in-flight bound, pause the input partitions; resume below 80 % of it. Polling goes on.
    pub(super) fn backpressure(&mut self, src: &mut Source) {
        if let Some(share) = self.share {
            // Events set aside go on once their workspaces are down to half their share.
            let book = &self.book;
            src.read_aside_again(|w| book.load_of(w) * 2 < share);
        }
        let max = self.intake.config.intake.max_in_flight_ids;
        let load = self.book.ids_in_flight() + self.book.messages();
        let held = src.held_offsets();
        let want_paused = if src.paused() {
            load * 5 > max * 4 || held * 5 > HELD_OFFSETS_MAX * 4
        } else {
            load >= max || held >= HELD_OFFSETS_MAX
        };
        if want_paused != src.paused() && src.pause_all(want_paused) {
            let (ids, events) = (self.book.ids_in_flight(), self.book.messages());
            tracing::info!(paused = want_paused, ids, events, max, "input backpressure");
        }
        // Selectors being resolved fetch their next page only while the input could flow.
        let room = !src.paused();
        self.tx.room.send_if_modified(|r| std::mem::replace(r, room) != room);
        // Paused with no call and no output in flight, only open batches: they cannot grow, and
        // waiting for their linger only stalls. Send the fullest now (more of them follow, one per
        // turn, until the load is low enough to resume).
        if src.paused() && self.calls_in_flight == 0 && self.outputs_in_flight == 0 {
            if let Some(batch) = self.coalescer.take_fullest() {
                tracing::debug!(
                    ids = batch.ids.len(),
                    "input paused with only open batches: sending the fullest"
                );
                self.send_batch(batch);
            }
        }
    }
}
