//! The intake's backpressure: the input paused past the in-flight bound, events of a workspace at
//! its share of it set aside and read again once it has room; and the input, the delete calls and
//! the outputs held while Kafka acknowledges nothing.

use std::time::Duration;

use super::State;
use crate::source::{Source, HELD_OFFSETS_MAX};

/// Kafka acknowledging no output for this long, while some wait, is an outage (acknowledgements
/// come within milliseconds, even under a backlog).
const SILENCE: Duration = Duration::from_secs(1);

impl State {
    /// Past the in-flight bound, the input's records wait (its partitions are paused once enough
    /// were taken, see `source/waiting.rs`); they go on below 80 % of it.
    /// While Kafka acknowledges nothing, the input is paused too, delete calls wait, and the
    /// outputs of calls already made are held: what is done then cannot be published nor
    /// committed, and a replica that takes the partition over (the group moves partitions after a
    /// long outage) does it again.
    pub(super) fn backpressure(&mut self, src: &mut Source) {
        let silent = self.unacked() > 0 && self.acked_at.elapsed() >= SILENCE;
        if self
            .tx
            .publishing
            .send_if_modified(|p| std::mem::replace(p, !silent) == silent)
        {
            match silent {
                true => tracing::warn!(unacked = self.unacked(), silence = ?SILENCE,
                    "Kafka acknowledged no output: delete calls, input and new outputs wait until it does"),
                false => {
                    tracing::info!(
                        held = self.held.len(),
                        "Kafka acknowledges outputs again: delete calls, input and the outputs held go on"
                    );
                    if !self.rebalancing {
                        self.publish_held();
                    }
                }
            }
        }
        if let Some(share) = self.share {
            // Events set aside go on once their workspaces are down to half their share.
            let book = &self.book;
            src.read_aside_again(|w| book.load_of(w) * 2 < share);
        }
        let max = self.intake.config.intake.max_in_flight_ids;
        let load = self.book.ids_in_flight() + self.book.messages();
        let held = src.held_offsets();
        let want_paused = silent
            || if src.paused() {
                load * 5 > max * 4 || held * 5 > HELD_OFFSETS_MAX * 4
            } else {
                load >= max || held >= HELD_OFFSETS_MAX
            };
        if want_paused != src.paused() {
            let (ids, events) = (self.book.ids_in_flight(), self.book.messages());
            tracing::info!(paused = want_paused, ids, events, max, "input backpressure");
        }
        src.pause_all(want_paused);
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
