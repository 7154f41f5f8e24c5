//! Records taken from the consumer while the role is full (or behind others that were), received in
//! their order once it has room.
//!
//! The loop polls the consumer on every turn, full or not, so that a rebalance is served at once:
//! a replica that leaves it pending goes on working on partitions the group may be handing to
//! another. Pausing the partitions as soon as the role is full would do that too, but a pause
//! makes librdkafka drop the records it has prefetched (up to `queued.max.messages.kbytes`) and
//! fetch them again on resume, a fetch round trip later: under a backlog the intake is full for
//! some tens of milliseconds every second or two, and its loop ran dry after each pause. So records
//! wait here first; once the role, full, took [`MAX_BYTES`] of them every partition is paused
//! (`pauses.rs`), and what waits here feeds the loop while librdkafka fetches again. With room, the
//! loop takes records waiting and new ones in turn, so at most [`MAX_BYTES`] wait then.

use std::collections::VecDeque;

use rdkafka::message::{Message, OwnedMessage};

use super::Tp;

/// Bytes of records (payloads and keys) that may wait while the role has room, and that it may take
/// while it is full before its partitions are paused.
pub(super) const MAX_BYTES: usize = 4 << 20;

#[derive(Debug, Default)]
pub(super) struct Waiting {
    records: VecDeque<(Tp, OwnedMessage)>,
    bytes: usize,
    /// Bytes taken since the role became full.
    while_full: usize,
}

fn size(m: &OwnedMessage) -> usize {
    m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len)
}

impl Waiting {
    /// A record taken, while the role is `full` or behind others waiting.
    pub fn push(&mut self, tp: Tp, m: OwnedMessage, full: bool) {
        let bytes = size(&m);
        self.bytes += bytes;
        if full {
            self.while_full += bytes;
        }
        self.records.push_back((tp, m));
    }

    pub fn pop(&mut self) -> Option<OwnedMessage> {
        let (_, m) = self.records.pop_front()?;
        self.bytes -= size(&m);
        Some(m)
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// [`MAX_BYTES`] wait: with room, the loop takes only these until fewer do.
    pub fn full(&self) -> bool {
        self.bytes >= MAX_BYTES
    }

    /// The role, full, took [`MAX_BYTES`]: its partitions should be paused.
    pub fn enough_while_full(&self) -> bool {
        self.while_full >= MAX_BYTES
    }

    /// The role has room again.
    pub fn room(&mut self) {
        self.while_full = 0;
    }

    /// Drops the records of `tp`: its position moved (a seek, a rebalance), and they come again.
    pub fn forget(&mut self, tp: Tp) {
        if self.records.iter().any(|(p, _)| *p == tp) {
            self.records.retain(|(p, _)| *p != tp);
            self.bytes = self.records.iter().map(|(_, m)| size(m)).sum();
        }
    }
}
