//! A backlog of requests and the worker's way through it, as the verification benchmarks measure
//! it: the intake requests the deletes and stops; the simulator's deletion job runs; then a
//! verifier starts with every part already due (a week falling due at once).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::StreamConsumer;
use rdkafka::Message;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{drop_consumer, Broker, SimWorld};

/// Request `i` of a backlog: 1–3 traces (made in the simulator) of project `i % projects`.
pub fn request(sim: &SimWorld, i: usize) -> (usize, Uuid, Vec<Uuid>) {
    let session = sim.sessions[i % sim.sessions.len()];
    let gen = json!({"session_id": session, "traces": 1 + i % 3, "return_ids": true});
    let (_, ids) = (sim.sim.state())
        .generate(sim.ws, serde_json::from_value(gen).unwrap())
        .unwrap();
    (i, session, ids)
}

/// What one way through a backlog took.
#[derive(Debug, Default)]
pub struct Figures {
    pub ids: usize,
    pub intake_secs: f64,
    pub intake_calls: u64,
    pub delete_calls: u64,
    pub verify_secs: f64,
    pub verify_calls: u64,
    /// v2 `traces/query` calls while verifying.
    pub verify_queries: u64,
    pub rate_limited: u64,
}

impl Figures {
    pub fn total_secs(&self) -> f64 {
        self.intake_secs + self.verify_secs
    }

    pub fn total_calls(&self) -> u64 {
        self.intake_calls + self.verify_calls
    }
}

/// Every call the simulator answered so far, of any endpoint and status.
pub fn calls(sim: &SimWorld) -> u64 {
    sim.sim.counters().calls.values().flat_map(|s| s.values()).sum()
}

fn queries(sim: &SimWorld) -> u64 {
    (sim.sim.counters()).calls_to(&langsmith_sim::counters::V2_TRACES_QUERY)
}

/// The worker through the `requests` already published to `topics[0]`: the intake alone until
/// every part is requested, the deletion job, then the verifier alone until every part ended. Both
/// roles run with the default limits and a fixed 1 s window. Asserts every id was verified.
pub async fn worker(broker: &Broker, sim: &SimWorld, topics: &[String], requests: usize) -> Figures {
    let extra = "[window]\nkind = \"fixed\"\ndelay = \"1s\"\n";
    let mut f = Figures::default();
    let deletes_before = sim.sim.counters().delete_calls_accepted;
    let calls_before = calls(sim);
    let requested = super::reader(&broker.bootstrap, &[&topics[2]]);
    let mut intake = super::spawn_worker(broker, sim, topics, "intake", extra);
    let started = Instant::now();
    f.ids = read(&requested, requests).await.iter().sum();
    f.intake_secs = started.elapsed().as_secs_f64();
    intake.terminate();
    drop_consumer(requested).await;
    f.intake_calls = calls(sim) - calls_before;
    f.delete_calls = sim.sim.counters().delete_calls_accepted - deletes_before;
    let applied = sim.sim.run_window().applied_traces;
    assert_eq!(applied as usize, f.ids, "the deletion job applies every requested id");

    let limited_before = sim.sim.counters().rate_limited;
    let (calls_before, queries_before) = (calls(sim), queries(sim));
    let terminal = super::reader(&broker.bootstrap, &[&topics[4], &topics[5]]);
    let mut verifier = super::spawn_worker(broker, sim, topics, "verifier", extra);
    let started = Instant::now();
    let verified: usize = read(&terminal, requests).await.iter().sum();
    f.verify_secs = started.elapsed().as_secs_f64();
    verifier.terminate();
    drop_consumer(terminal).await;
    f.verify_calls = calls(sim) - calls_before;
    f.verify_queries = queries(sim) - queries_before;
    f.rate_limited = sim.sim.counters().rate_limited - limited_before;
    assert_eq!(verified, f.ids, "every requested trace id is verified");
    f
}

/// Reads events until `n` distinct keys were seen; the number of trace ids each named. Fails on a
/// `deletion-failed` event, or after 30 minutes without one.
async fn read(reader: &StreamConsumer, n: usize) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while seen.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(1800), reader.recv())
            .await
            .expect("the worker stalled")
            .unwrap();
        let event: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_ne!(event["type"], "erasure.deletion.failed.v1", "nothing fails: {event}");
        if seen.insert(m.key().map(<[u8]>::to_vec)) {
            out.push(event["data"]["trace_ids"].as_array().unwrap().len());
        }
    }
    out
}
