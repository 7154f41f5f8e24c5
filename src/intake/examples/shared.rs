//! Per workspace, the example calls that requests share, in rounds: a round takes every ask waiting
//! when it starts, and asks made meanwhile wait for the next. The scan for examples made from runs
//! reads the whole workspace, so one scan serves every request that asked before it began (an
//! example made before a request arrived is in it); the selectors' searches by metadata go
//! [`SEARCHED_TOGETHER`] to a call; the hard deletes of all the requests asking together go in
//! calls of at most 1000 ids, each read back at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::{refusal, Erased};
use crate::api::{Clients, LangSmith, Refusal, Refused, Sourced, EXAMPLES_PER_DELETE};
use crate::event::FailReason;
use crate::intake::rounds::{ask, rounds, Asks};

/// Examples made from runs, by the trace and by the run each was made from.
#[derive(Debug, Default)]
pub struct Sources(HashMap<Uuid, Vec<Uuid>>);

impl Sources {
    fn new(sourced: Vec<Sourced>) -> Sources {
        let mut by = HashMap::<Uuid, Vec<Uuid>>::new();
        for e in sourced {
            let from: BTreeSet<Uuid> = e.source_trace_id.into_iter().chain(e.source_run_id).collect();
            for source in from {
                by.entry(source).or_default().push(e.id);
            }
        }
        Sources(by)
    }

    /// The examples made from `trace` (a trace's root run has the trace's id).
    pub fn of(&self, trace: &Uuid) -> &[Uuid] {
        self.0.get(trace).map_or(&[], Vec::as_slice)
    }
}

/// Selectors' example searches in one call at most: their filters go in its query string.
const SEARCHED_TOGETHER: usize = 25;

type Pairs = BTreeMap<String, String>;
type Searched = Result<(Vec<Uuid>, bool), Refused>;

/// A workspace's shared example calls.
#[derive(Clone)]
pub struct Shared {
    scans: Asks<(), Result<Arc<Sources>, Refused>>,
    searches: Asks<Pairs, Searched>,
    deletes: Asks<Vec<Uuid>, Erased>,
}

impl Shared {
    /// Starts the rounds of workspace `alias` (a task each, for as long as a handle lives).
    pub fn spawn(clients: Clients, alias: String) -> Shared {
        let (c, a) = (clients.clone(), alias.clone());
        let scans = rounds(move |asks: Vec<()>| {
            let (clients, alias) = (c.clone(), a.clone());
            async move {
                let scanned = clients[&alias].examples_made_from_runs(Utc::now()).await;
                let sources = scanned.map(|s| Arc::new(Sources::new(s)));
                vec![sources; asks.len()]
            }
        });
        let (c, a) = (clients.clone(), alias.clone());
        let searches = rounds(move |asks: Vec<Pairs>| {
            let (clients, alias) = (c.clone(), a.clone());
            async move { search_together(&clients[&alias], asks).await }
        });
        let deletes = rounds(move |asks: Vec<Vec<Uuid>>| {
            let (clients, alias) = (clients.clone(), alias.clone());
            async move { erase_together(&clients[&alias], asks).await }
        });
        Shared {
            scans,
            searches,
            deletes,
        }
    }

    /// The examples whose metadata holds every pair (as of the search's start, after this call),
    /// and whether there were more than one request erases.
    pub async fn search(&self, pairs: Pairs) -> Searched {
        ask(&self.searches, pairs).await
    }

    /// The workspace's examples made from runs, read by a scan that began after this call.
    pub async fn sources(&self) -> Result<Arc<Sources>, Refused> {
        ask(&self.scans, ()).await
    }

    /// Hard-deletes `ids` and reads them back, in the calls of the round it joins.
    pub async fn erase(&self, ids: Vec<Uuid>) -> Erased {
        ask(&self.deletes, ids).await
    }
}

/// Searches the examples of every ask, [`SEARCHED_TOGETHER`] to a call. A call refused, or
/// answered with an example it cannot share out, is made again for each ask alone.
async fn search_together(api: &LangSmith, asks: Vec<Pairs>) -> Vec<Searched> {
    let as_of = Utc::now();
    let mut out = Vec::with_capacity(asks.len());
    for chunk in asks.chunks(SEARCHED_TOGETHER) {
        if chunk.len() > 1 {
            if let Ok(Some(each)) = api.examples_holding(chunk, as_of).await {
                out.extend(each.into_iter().map(Ok));
                continue;
            }
            tracing::warn!(
                workspace = api.alias(),
                selectors = chunk.len(),
                "an example search of selectors together was refused or not shared out: each is searched alone"
            );
        }
        for pairs in chunk {
            let alone = api.examples_holding(std::slice::from_ref(pairs), as_of).await;
            out.push(alone.map(|each| each.and_then(|mut e| e.pop()).unwrap_or_default()));
        }
    }
    out
}

/// Hard-deletes the ids of every ask, each once, and tells each ask what became of its own.
async fn erase_together(api: &LangSmith, asks: Vec<Vec<Uuid>>) -> Vec<Erased> {
    let all: Vec<Uuid> = asks
        .iter()
        .flatten()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut done = Erased::default();
    for chunk in all.chunks(EXAMPLES_PER_DELETE) {
        let refused = api.hard_delete_examples(chunk).await;
        let deleted: Vec<Uuid> = chunk.iter().filter(|id| !refused.contains_key(id)).copied().collect();
        read_back(api, &deleted, &mut done).await;
        done.failed.extend(grouped(refused));
    }
    asks.iter().map(|ids| done.of(ids)).collect()
}

/// Refused examples grouped by why, in id order (examples have no project: a 404 is no
/// `unknown_session`).
fn grouped(refused: HashMap<Uuid, Refusal>) -> Vec<(Vec<Uuid>, Refusal)> {
    let mut refused: Vec<(Uuid, Refusal)> = refused.into_iter().collect();
    refused.sort_by_key(|(id, _)| *id);
    let mut groups: Vec<(Vec<Uuid>, Refusal)> = Vec::new();
    for (id, mut why) in refused {
        if why.reason == FailReason::UnknownSession {
            why.reason = FailReason::RejectedByApi;
        }
        match groups.iter_mut().find(|(_, w)| *w == why) {
            Some((ids, _)) => ids.push(id),
            None => groups.push((vec![id], why)),
        }
    }
    groups
}

/// Sorts examples just hard-deleted into erased and, if LangSmith still returns data of them,
/// `still_present`.
async fn read_back(api: &LangSmith, ids: &[Uuid], out: &mut Erased) {
    if ids.is_empty() {
        return;
    }
    match api.examples_holding_data(ids).await {
        Ok(held) => {
            let (left, gone): (Vec<Uuid>, Vec<Uuid>) = ids.iter().partition(|id| held.contains(id));
            out.erased.extend(gone);
            if !left.is_empty() {
                let why = Refusal {
                    reason: FailReason::StillPresent,
                    detail: "read back after the hard delete, these examples still hold data".into(),
                };
                out.failed.push((left, why));
            }
        }
        Err(refused) => {
            let mut why = refusal("the examples read-back", &refused);
            if why.reason == FailReason::RejectedByApi {
                why.reason = FailReason::CheckRejected;
            }
            out.failed.push((ids.to_vec(), why));
        }
    }
}

impl Erased {
    /// What became of `ids`, of all this holds.
    fn of(&self, ids: &[Uuid]) -> Erased {
        let mine: BTreeSet<&Uuid> = ids.iter().collect();
        let erased = self.erased.iter().filter(|id| mine.contains(id)).copied().collect();
        let failed = (self.failed.iter())
            .map(|(ids, why)| {
                (
                    ids.iter().filter(|id| mine.contains(id)).copied().collect::<Vec<_>>(),
                    why,
                )
            })
            .filter(|(ids, _)| !ids.is_empty())
            .map(|(ids, why)| (ids, why.clone()))
            .collect();
        Erased { erased, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ask_hears_of_its_own_ids_only() {
        let [a, b, c] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let why = Refusal {
            reason: FailReason::StillPresent,
            detail: "d".into(),
        };
        let all = Erased {
            erased: vec![a, b],
            failed: vec![(vec![c], why.clone())],
        };
        assert_eq!(
            all.of(&[a]),
            Erased {
                erased: vec![a],
                failed: vec![]
            }
        );
        assert_eq!(
            all.of(&[b, c]),
            Erased {
                erased: vec![b],
                failed: vec![(vec![c], why)]
            }
        );
    }

    #[test]
    fn an_example_is_found_by_its_source_trace_or_run() {
        let [e1, e2, t1, r2, other] = [(); 5].map(|_| Uuid::new_v4());
        let sources = Sources::new(vec![
            Sourced {
                id: e1,
                source_trace_id: Some(t1),
                source_run_id: Some(t1),
            },
            Sourced {
                id: e2,
                source_trace_id: None,
                source_run_id: Some(r2),
            },
        ]);
        assert_eq!(sources.of(&t1), [e1]);
        assert_eq!(sources.of(&r2), [e2]);
        assert!(sources.of(&other).is_empty());
    }
}
