//! Checks of one project that fall due together, asked in one query. Each part's check hands its
//! ids to its project's batch and waits for its own share of the answer; a part keeps its own
//! outcome, attempts and events (`check.rs`), only the query is shared.
//!
//! A batch goes when it holds [`MAX_IDS`] ids, or `verifier.check_linger` after its first part came;
//! one query per project runs at a time, and what arrives meanwhile forms the next batch. So under
//! the query rate limit batches grow by themselves: the weekly window makes whole weeks fall due at
//! once, and a project's parts wait for one query, not one each.
//!
//! The question is v2 `traces/query` (or v1 `runs/query`) with the batch's trace ids and a page of
//! one: "any left?". Its page limit (100; v2 `runs/query` takes 1,000) only matters when traces are
//! left, which after the deletion window is rare, so a batch is not bounded by it. It is bounded by
//! [`MAX_IDS`], the delete limit: a request body of about 40 KB.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use super::Verifier;
use crate::api::Refused;

/// Trace ids one query asks about at most (a part with more is asked about alone).
pub const MAX_IDS: usize = 1000;

/// A project's answer for one part: its ids still present.
type Answer = Result<Vec<Uuid>, Refused>;

struct Waiter {
    ids: Vec<Uuid>,
    since: DateTime<Utc>,
    at: Instant,
    tx: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Batch {
    waiting: Vec<Waiter>,
    ids: usize,
    /// A task sends this project's queries; it ends when nothing waits.
    running: bool,
}

/// (workspace, project) → the parts waiting for a query.
type Key = (String, Uuid);

pub struct Batches {
    batches: Mutex<HashMap<Key, Batch>>,
    linger: Duration,
    /// `max_concurrent_checks` per workspace: queries (and re-requests) in flight, so that a
    /// workspace whose calls never return holds only its own parts.
    permits: HashMap<String, Arc<Semaphore>>,
}

impl Batches {
    pub fn new(linger: Duration, workspaces: impl Iterator<Item = String>, per_workspace: usize) -> Batches {
        Batches {
            batches: Mutex::new(HashMap::new()),
            linger,
            permits: workspaces
                .map(|w| (w, Arc::new(Semaphore::new(per_workspace))))
                .collect(),
        }
    }

    /// The permits of `workspace`'s calls (one of its configured workspaces).
    pub fn permits(&self, workspace: &str) -> Arc<Semaphore> {
        self.permits[workspace].clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Batch>> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which of `ids` (traces of `session` in `workspace`, none started before `since`) still exist,
/// asked together with the other parts of the project that are waiting.
pub async fn remaining(
    v: &Arc<Verifier>,
    workspace: &str,
    session: Uuid,
    ids: &[Uuid],
    since: DateTime<Utc>,
) -> Answer {
    let (tx, rx) = oneshot::channel();
    let key = (workspace.to_owned(), session);
    let start = {
        let mut batches = v.batches.lock();
        let b = batches.entry(key.clone()).or_default();
        b.waiting.push(Waiter {
            ids: ids.to_vec(),
            since,
            at: Instant::now(),
            tx,
        });
        b.ids += ids.len();
        !std::mem::replace(&mut b.running, true)
    };
    if start {
        tokio::spawn(send_batches(v.clone(), key));
    }
    // The sender answers every waiter it takes; should it ever fail to, every id counts as left
    // (checked again), never as gone.
    rx.await.unwrap_or_else(|_| Ok(ids.to_vec()))
}

/// Sends `key`'s batches, one query at a time, until nothing waits.
async fn send_batches(v: Arc<Verifier>, key: Key) {
    loop {
        // Not full: wait until the oldest part has waited `linger`.
        let wait_until = {
            let batches = v.batches.lock();
            let b = &batches[&key];
            let first = b.waiting.first().map(|w| w.at);
            first.filter(|_| b.ids < MAX_IDS).map(|t| t + v.batches.linger)
        };
        if let Some(at) = wait_until {
            tokio::time::sleep_until(at).await;
        }
        let Ok(_permit) = v.batches.permits(&key.0).acquire_owned().await else {
            return;
        };
        let Some(batch) = take(&v, &key) else {
            return;
        };
        ask(&v, &key, batch).await;
    }
}

/// Takes the waiters of `key`, oldest first, up to [`MAX_IDS`] ids (at least one); `None`, and the
/// batch's task ends, when nothing waits.
fn take(v: &Verifier, key: &Key) -> Option<Vec<Waiter>> {
    let mut batches = v.batches.lock();
    let b = batches.get_mut(key)?;
    if b.waiting.is_empty() {
        batches.remove(key);
        return None;
    }
    let (mut n, mut count) = (0, 0);
    for w in &b.waiting {
        if count > 0 && n + w.ids.len() > MAX_IDS {
            break;
        }
        n += w.ids.len();
        count += 1;
    }
    let taken: Vec<Waiter> = b.waiting.drain(..count).collect();
    b.ids -= n;
    Some(taken)
}

/// One query for `batch`, and each waiter's share of the answer.
async fn ask(v: &Verifier, (workspace, session): &Key, batch: Vec<Waiter>) {
    let mut ids: Vec<Uuid> = batch.iter().flat_map(|w| w.ids.iter().copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    let since = batch.iter().map(|w| w.since).min().unwrap_or_else(Utc::now);
    let api = &v.clients[workspace];
    let answer = api.remaining(v.config.verifier.query_api, *session, &ids, since).await;
    match answer {
        Ok(r) => {
            v.metrics.check_queries.inc_by(r.queries.into());
            let left: HashSet<Uuid> = r.ids.into_iter().collect();
            for w in batch {
                let mine = w.ids.into_iter().filter(|id| left.contains(id)).collect();
                let _ = w.tx.send(Ok(mine));
            }
        }
        Err(refused) => {
            for w in batch {
                let _ = w.tx.send(Err(refused.clone()));
            }
        }
    }
}
