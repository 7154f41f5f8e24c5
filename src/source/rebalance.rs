//! What a rebalance means for the work in flight. A revoked partition's work goes on and is
//! remembered by the fence; records held and not started are given back. Assigned afresh, a
//! partition starts a new generation; revoked and not assigned again, it went to another replica,
//! which replays what was not stored, so the work held for it here is abandoned.

use super::{Source, Tp, Work};
use crate::kafka::Assignment;

impl Source {
    pub fn rebalance<W: Work>(&mut self, work: &mut W, a: Assignment) {
        // What completed before the rebalance is stored first, as the turn that completed it ends.
        self.store_moved();
        match a {
            Assignment::Assigned(parts) => {
                tracing::info!(role = W::ROLE, ?parts, "partitions assigned");
                let tps = self.known(parts);
                for tp in &tps {
                    self.forget(work, *tp);
                    self.fence.assign(*tp);
                    self.assigned.insert(*tp);
                }
                let moved = std::mem::take(&mut self.revoked);
                for tp in moved.into_iter().filter(|tp| !tps.contains(tp)) {
                    work.abandon(tp);
                    self.fence.abandon(tp);
                }
                self.start_assigned(&tps);
                work.assigned(self);
            }
            Assignment::Revoked(parts) => {
                tracing::info!(
                    role = W::ROLE,
                    ?parts,
                    "partitions revoked: work in flight goes on, and is replayed if another replica gets them"
                );
                for tp in self.known(parts) {
                    self.forget(work, tp);
                    self.revoked.push(tp);
                }
                work.revoked(self);
            }
            Assignment::Committed(committed) => {
                for (topic, partition, offset, metadata) in committed {
                    let Some(tp) = self.tp(&topic, partition) else { continue };
                    let ranges = super::done::decode(&metadata, offset);
                    if !ranges.is_empty() {
                        tracing::info!(
                            role = W::ROLE,
                            partition,
                            committed = offset,
                            ranges = ranges.len(),
                            "offsets done past the committed one by the last owner: not done again"
                        );
                    }
                    self.fence.done_elsewhere(tp, ranges);
                }
            }
        }
    }

    fn known(&self, parts: Vec<(String, i32)>) -> Vec<Tp> {
        (parts.into_iter())
            .filter_map(|(topic, p)| self.tp(&topic, p))
            .collect()
    }

    /// `tp` is not ours any more, or is ours afresh: records held unstarted (set aside, waiting, or
    /// held by the role) are given back, to be done again when redelivered; work in flight goes on.
    fn forget<W: Work>(&mut self, work: &mut W, tp: Tp) {
        let mut dropped = self.aside.forget(tp);
        dropped.extend(work.release(tp));
        self.fence.revoke(tp, &dropped);
        self.gaps.forget(&tp);
        self.waiting.forget(tp);
        self.forget_holds(tp);
        self.assigned.remove(&tp);
        self.saves.remove(&tp);
    }
}
