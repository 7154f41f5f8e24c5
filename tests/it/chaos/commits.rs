//! "Nothing was committed before it was done": samples of the intake group's committed offsets,
//! each taken with the length of the simulator's delete log right after it. Every valid request
//! below a committed offset must have had all its ids accepted by the delete API by then.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use erasure_worker::kafka::client_config;
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use super::plan::{Kind, Plan};
use crate::support::drop_consumer;
use crate::world::World;

struct Sample {
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
        self.samples.push(Sample { committed, sent });
    }

    /// Checks every sample against where each request landed; returns (samples, problems).
    pub fn check(&self, plan: &Plan, at: &[(i32, i64)], sim: &Sim) -> (usize, Vec<String>) {
        // (workspace, session, id) → index of the first delete call that carried it.
        let mut first: HashMap<(usize, Uuid, Uuid), usize> = HashMap::new();
        for (w, (ws, _, _)) in plan.workspaces.iter().enumerate() {
            for (i, (session, ids)) in sim.delete_calls(*ws).into_iter().enumerate() {
                for id in ids {
                    first.entry((w, session, id)).or_insert(i);
                }
            }
        }
        let mut problems = Vec::new();
        for (r, (p, o)) in plan.requests.iter().zip(at) {
            if !matches!(r.kind, Kind::Explicit | Kind::Selector) {
                continue;
            }
            // The first sample that committed past this request.
            let Some(s) = self.samples.iter().find(|s| s.committed.get(p).is_some_and(|c| c > o)) else {
                continue;
            };
            for (session, ids) in &r.ids {
                let late = ids
                    .iter()
                    .filter(|id| first.get(&(r.ws, *session, **id)).is_none_or(|i| *i >= s.sent[r.ws]))
                    .count();
                if late > 0 {
                    problems.push(format!(
                        "{} (partition {p}, offset {o}) was committed before {late} of its ids were deleted",
                        r.id
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
