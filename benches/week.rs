//! Weekly-burst verification benchmark (a program that prints figures, not a timed test): LangSmith
//! deletes in a weekly job, so a whole week of parts falls due at once. The intake requests the
//! deletes of REQUESTS requests (1–3 trace ids each, over 50 projects) and stops; the simulator's
//! deletion job runs; then a verifier starts with every part already due. The simulator applies
//! LangSmith's documented limits (v2 queries 300 per 10 s per key), the worker its default limits.
//! Prints the verification time (from the verifier's start to the last terminal event), the
//! queries per verified trace id and the 429s.
//!
//! Run: `cargo bench --bench week` (optional: `-- REQUESTS`, default 20,000; 200 as a smoke run
//! under `cargo test`). Needs Tansu (`scripts/kafka-broker install`).

mod common;

use common::pipeline;
use common::{Broker, SimWorld};

fn main() {
    let requests = common::size(20_000, 200);
    common::runtime().block_on(bench(requests));
}

async fn bench(requests: usize) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(50, true);
    let topics = common::topics(&broker.bootstrap).await;
    let backlog = (0..requests).map(|i| pipeline::request(&sim, i));
    common::publish(&common::producer(&broker.bootstrap), &topics[0], backlog).await;
    let f = pipeline::worker(&broker, &sim, &topics, requests).await;
    println!(
        "intake: {requests} requests ({} trace ids) requested in {:.1} s",
        f.ids, f.intake_secs
    );
    println!(
        "verification: {requests} parts ({} trace ids) verified in {:.1} s from the verifier's start; \
         {} v2 queries ({} calls in all), {} answered 429",
        f.ids, f.verify_secs, f.verify_queries, f.verify_calls, f.rate_limited
    );
    let q = f.verify_queries as f64;
    println!(
        "queries per verified trace id: {:.4} (1/{:.0}); per part {:.3}",
        q / f.ids as f64,
        f.ids as f64 / q.max(1.0),
        q / requests as f64,
    );
}
