//! "Nothing was committed before it was done": samples of the intake group's committed offsets,
//! each taken with the length of the simulator's delete log right after it. Every valid request
//! below a committed offset must have had all its ids accepted by the delete API by then.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use erasure_worker::kafka::client_config;
use langsmith_sim::model::DeleteTarget;
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use super::plan::{Kind, Plan};
use crate::support::drop_consumer;
use crate::world::World;

struct Sample {
    /// When it was taken (to set beside the workers' logs).
    at: DateTime<Utc>,
    committed: BTreeMap<i32, i64>,
    /// Per workspace of the plan: how many delete calls the simulator had accepted.
    sent: Vec<usize>,
}

pub struct Commits {
    probe: StreamConsumer,
    topic: String,
    partitions: i32,
    samples: Vec<Sample>,
}

impl Commits {
    pub fn new(world: &World, partitions: i32) -> Commits {
        let probe = client_config(&world.bootstrap)
            .set("group.id", format!("{}.intake", world.prefix))
            .create()
            .expect("offset probe");
        Commits {
            probe,
            topic: world.topic("requests"),
            partitions,
            samples: Vec::new(),
        }
    }

    /// Reads the committed offsets, then the delete log's length; skipped when the broker does
    /// not answer in time (it may be cut off on purpose).
    pub fn sample(&mut self, plan: &Plan, sim: &Sim) {
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.topic, p);
        }
        let probe = &self.probe;
        let at = Utc::now();
        let Ok(committed) = tokio::task::block_in_place(|| probe.committed_offsets(tpl, Duration::from_secs(5))) else {
            return;
        };
        let committed = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect();
        let sent = plan
            .workspaces
            .iter()
            .map(|(ws, _, _)| sim.delete_calls_from(*ws, usize::MAX).1)
            .collect();
        self.samples.push(Sample { at, committed, sent });
    }

    /// Checks every sample against where each request landed; returns (samples, problems).
    pub fn check(&self, plan: &Plan, at: &[(i32, i64)], sim: &Sim) -> (usize, Vec<String>) {
        // (workspace, session, id) → position in the delete log of the first call that carried it.
        let mut first: HashMap<(usize, Uuid, Uuid), usize> = HashMap::new();
        let state = sim.state();
        for (w, (ws, _, _)) in plan.workspaces.iter().enumerate() {
            for (i, call) in state.workspaces[ws].delete_log.iter().enumerate() {
                if let DeleteTarget::Traces { session_id, trace_ids } = call {
                    for id in trace_ids {
                        first.entry((w, *session_id, *id)).or_insert(i);
                    }
                }
            }
        }
        drop(state);
        let mut problems = Vec::new();
        for (r, (p, o)) in plan.requests.iter().zip(at) {
            if !matches!(r.kind, Kind::Explicit | Kind::Selector) {
                continue;
            }
            // The first sample that committed past this request.
            let Some((n, s)) = self
                .samples
                .iter()
                .enumerate()
                .find(|(_, s)| s.committed.get(p).is_some_and(|c| c > o))
            else {
                continue;
            };
            // Ids of the project that answered 403 for a while may be committed undeleted: they
            // failed as `forbidden`, which the reconciler checks.
            for (session, ids) in r.ids.iter().filter(|(s, _)| plan.forbidden != Some(**s)) {
                let late: Vec<Option<usize>> = ids
                    .iter()
                    .map(|id| first.get(&(r.ws, *session, *id)).copied())
                    .filter(|i| i.is_none_or(|i| i >= s.sent[r.ws]))
                    .collect();
                if !late.is_empty() {
                    problems.push(format!(
                        "{} (partition {p}, offset {o}) was committed before {} of its ids were deleted: \
                         sample {n} at {} saw {p} committed at {} with {} delete calls logged; \
                         the ids' first calls are at {late:?} in the log",
                        r.id,
                        late.len(),
                        s.at.format("%H:%M:%S%.3f"),
                        s.committed[p],
                        s.sent[r.ws]
                    ));
                }
            }
        }
        (self.samples.len(), problems)
    }

    pub async fn close(self) {
        drop_consumer(self.probe).await;
    }
}
