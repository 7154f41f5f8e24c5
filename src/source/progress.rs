//! Committing the offsets done past each partition's committed one (`done.rs`), and saving them
//! whole on the progress topic when they do not fit in the metadata (`saved.rs`).

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::done::{self, MAX_BYTES, SAVED_MAX_BYTES};
use super::saved::Saving;
use super::{Source, Tp};

/// How often the offsets done past the committed ones are committed: what a replica that dies
/// finished since is done again by the next owner.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// How often a partition's progress is saved, at most.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// A partition's progress saved, and the save under way.
#[derive(Default)]
pub struct Save {
    /// Where the last record Kafka acknowledged is.
    at: Option<(i32, i64)>,
    pending: Option<Saving>,
    /// When the last save began.
    began: Option<Instant>,
}

impl Source {
    /// Commits each assigned partition's offsets done past its committed one, so that a replica
    /// taking it over does not do them again. Runs every [`INTERVAL`]: librdkafka's own commits
    /// carry the metadata stored with the offset, and its timer makes them only when the offset
    /// moves. Where they do not fit, a save of them all is begun (each second at most), and the
    /// commit names the last one made.
    ///
    /// The metadata is stored with the offset again too: at a revocation librdkafka commits the
    /// offset stored, moved or not, with its metadata. Stored only when the offset last moved, that
    /// metadata would undo this commit behind a stuck offset, and the next owner would redo what
    /// was done since.
    pub fn commit_progress(&mut self) {
        let mut tps: Vec<Tp> = self.assigned.iter().copied().collect();
        tps.sort_unstable();
        let mut commits = Vec::new();
        for tp in tps {
            let Some((next, (text, whole))) = self.inline(tp) else {
                self.saves.remove(&tp);
                continue;
            };
            match whole {
                true => _ = self.saves.remove(&tp),
                false => self.save(tp),
            }
            commits.push((tp, next, self.pointing(tp, text, whole)));
        }
        if commits.is_empty() {
            return;
        }
        for (tp, next, metadata) in &commits {
            if let Err(e) = self.input.store(self.topic(*tp), tp.1, next - 1, metadata) {
                tracing::debug!(partition = tp.1, error = %e, "progress not stored (partition revoked?)");
            }
        }
        let progress: Vec<(&str, i32, i64, String)> = (commits.into_iter())
            .map(|(tp, next, metadata)| (self.topic(tp), tp.1, next, metadata))
            .collect();
        if let Err(e) = self.input.commit_progress(&progress) {
            tracing::debug!(error = %e, "offsets done past the committed ones not committed; again at the next tick");
        }
    }

    /// The metadata of `tp`'s commit: the offsets done past the committed one, and the record saved
    /// last if they do not fit.
    pub(super) fn metadata(&self, tp: Tp) -> String {
        match self.inline(tp) {
            Some((_, (text, whole))) => self.pointing(tp, text, whole),
            None => String::new(),
        }
    }

    /// The offset a commit of `tp` resumes at, and the bitmap of the offsets done past it that
    /// fits in the metadata, with whether it names them all.
    fn inline(&self, tp: Tp) -> Option<(i64, (String, bool))> {
        let (next, done) = self.fence.progress(tp)?;
        Some((next, done::encode(next, done, MAX_BYTES)))
    }

    /// `text`, naming the record saved last when it does not name every offset done (`whole`).
    fn pointing(&self, tp: Tp, text: String, whole: bool) -> String {
        match self.saves.get(&tp).and_then(|s| s.at) {
            Some((partition, offset)) if !whole => done::pointing(text, partition, offset),
            _ => text,
        }
    }

    /// Takes note of `tp`'s save that ended, and begins the next (its done offsets do not fit in
    /// the metadata). A save made for an earlier committed offset still counts.
    fn save(&mut self, tp: Tp) {
        let save = self.saves.entry(tp).or_default();
        if let Some(pending) = &mut save.pending {
            match pending.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Pending => return,
                Poll::Ready(at) => (save.at, save.pending) = (at.or(save.at), None),
            }
        }
        if save.began.is_some_and(|t| t.elapsed() < SAVE_EVERY) {
            return;
        }
        let Some((next, done)) = self.fence.progress(tp) else {
            return;
        };
        let (text, _) = done::encode(next, done, SAVED_MAX_BYTES);
        save.pending = Some(self.input.save(&self.topics[tp.0], tp.1, text));
        save.began = Some(Instant::now());
    }
}
