//! Intake benchmark (a program that prints figures, not a timed test), against Tansu and the simulator:
//! - backlog (default): the raw consume rate of the broker for the backlog (a plain consumer, same
//!   run), then the intake throughput (events/s, trace ids/s) and peak RSS of the release worker
//!   binary draining it;
//! - trickle (BENCH_RATE=events per second): the worker runs while the events arrive at that rate;
//! - both: delete calls against the minimum (the sum of ceil(ids / 1000) per project).
//!
//! Run: `cargo bench --bench intake` (optional: `-- EVENTS`, default 1,000,000; 5,000 as a smoke run
//! under `cargo test`). BENCH_MIX=zipf draws projects with Zipf weights instead of round robin.
//! Needs Tansu (`scripts/kafka-broker install`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{cpu_secs, drop_consumer, status_kib, Broker, SimWorld, PARTITIONS};
use erasure_worker::kafka::client_config;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use uuid::Uuid;

const SESSIONS: usize = 50;

fn main() {
    let events = common::size(1_000_000, 5_000);
    common::runtime().block_on(bench(events));
}

/// Which project each event goes to: round robin, or Zipf weights (exponent 1.1) with BENCH_MIX=zipf.
struct Mix {
    zipf: bool,
    weights: Vec<f64>,
    total: f64,
    rng: u64,
}

impl Mix {
    fn from_env() -> Mix {
        let weights: Vec<f64> = (1..=SESSIONS).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
        Mix {
            zipf: std::env::var("BENCH_MIX").is_ok_and(|m| m == "zipf"),
            total: weights.iter().sum(),
            weights,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn pick(&mut self, i: usize) -> usize {
        if !self.zipf {
            return i % SESSIONS;
        }
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut x = (self.rng >> 11) as f64 / (1u64 << 53) as f64 * self.total;
        self.weights
            .iter()
            .position(|w| {
                x -= w;
                x < 0.0
            })
            .unwrap_or(SESSIONS - 1)
    }
}

/// Produces events `range` (1 to 3 ids each), batched as a busy producer would; at `rate` events per
/// second when given. Counts ids per project into `per_session`.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    sim: &SimWorld,
    range: std::ops::Range<usize>,
    rate: Option<f64>,
    mix: &mut Mix,
    per_session: &mut [usize],
) {
    let start = Instant::now();
    let first = range.start;
    let mut pending = Vec::new();
    for i in range {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64((i - first) as f64 / r);
            tokio::time::sleep_until(due.into()).await;
        }
        let s = mix.pick(i);
        let ids: Vec<Uuid> = (0..1 + i % 3).map(|_| Uuid::new_v4()).collect();
        per_session[s] += ids.len();
        pending.push(common::send(producer, topic, i, sim.sessions[s], &ids).await);
        if pending.len() >= 50_000 {
            for d in pending.drain(..) {
                d.await.unwrap().unwrap();
            }
        }
    }
    for d in pending.drain(..) {
        d.await.unwrap().unwrap();
    }
}

/// The raw consume rate of the same broker and topic: a plain consumer reading `events`.
async fn raw_consume(bootstrap: &str, topic: &str, events: usize) -> f64 {
    let raw: StreamConsumer = client_config(bootstrap)
        .set("group.id", "bench-raw")
        .set("fetch.wait.max.ms", common::fetch_wait_ms())
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    raw.subscribe(&[topic]).unwrap();
    let mut start = None;
    for _ in 0..events {
        raw.recv().await.unwrap();
        start.get_or_insert_with(Instant::now);
    }
    let rate = events as f64 / start.unwrap().elapsed().as_secs_f64();
    drop_consumer(raw).await;
    rate
}

/// Waits for every offset of the input to be committed (auto-commit runs every 5 s).
async fn wait_committed(bootstrap: &str, topic: &str, events: usize) {
    let probe: StreamConsumer = client_config(bootstrap)
        .set("group.id", "bench-intake")
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(topic, p);
        }
        let done: i64 = probe.committed_offsets(tpl, Duration::from_secs(5)).map_or(0, |c| {
            c.elements()
                .iter()
                .map(|e| match e.offset() {
                    rdkafka::Offset::Offset(o) => o,
                    _ => 0,
                })
                .sum()
        });
        if done as usize >= events {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {events} offsets committed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop_consumer(probe).await;
}

async fn bench(events: usize) {
    let broker = Broker::start(None);
    let sim = SimWorld::start(SESSIONS, false);
    let topics = common::topics(&broker.bootstrap).await;
    let rate: Option<f64> = std::env::var("BENCH_RATE")
        .ok()
        .map(|r| r.parse().expect("BENCH_RATE: events per second"));
    let mut mix = Mix::from_env();
    let mut per_session = vec![0usize; SESSIONS];
    let producer = common::producer(&broker.bootstrap);
    let mix_name = if mix.zipf { "Zipf 1.1" } else { "uniform" };
    let mut raw_rate = None;
    if rate.is_none() {
        let t = Instant::now();
        produce(&producer, &topics[0], &sim, 0..events, None, &mut mix, &mut per_session).await;
        let ids: usize = per_session.iter().sum();
        println!(
            "backlog: {events} events ({ids} trace ids, {mix_name} mix over {SESSIONS} projects) produced in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let r = raw_consume(&broker.bootstrap, &topics[0], events).await;
        println!("raw consume: {r:.0} events/s");
        raw_rate = Some(r);
    }

    // Every request yields one deletion-requested event here (one project, at most 3 ids): the
    // worker is done when the last one arrives. This reader polls briskly so it is never the limit.
    let reader = common::reader(&broker.bootstrap, &[&topics[2]]);
    let broker_cpu_before = cpu_secs(broker.pid);
    let own_cpu_before = cpu_secs(std::process::id());
    let t = Instant::now();
    // Each delete batch first asks where its ids are (v2 `runs/query`; twice here, since the ids are
    // made up and found nowhere): the v2 limit is raised with the delete limit, so the figure is the
    // worker's own pace, not LangSmith's quota.
    let extra = format!(
        "[limits]\nscope = \"replica\"\ndelete_per_second = 1000\nquery_v2_per_second = 2000\n[intake]\nmax_in_flight_ids = {}\n",
        std::env::var("BENCH_MAX_IN_FLIGHT").unwrap_or_else(|_| "100000".into())
    );
    let mut worker = common::spawn_worker(&broker, &sim, &topics, "intake", &extra);
    let trickle = async {
        if let Some(r) = rate {
            let mut per = vec![0usize; SESSIONS];
            produce(
                &producer,
                &topics[0],
                &sim,
                0..events,
                Some(r),
                &mut Mix::from_env(),
                &mut per,
            )
            .await;
            per
        } else {
            Vec::new()
        }
    };
    let drain = async {
        let mut seen = HashSet::with_capacity(events);
        let mut peak_rss = 0;
        let mut sample = tokio::time::interval(Duration::from_millis(100));
        while seen.len() < events {
            tokio::select! {
                m = reader.recv() => { seen.insert(m.unwrap().key().map(<[u8]>::to_vec)); }
                _ = sample.tick() => {
                    let rss = status_kib(worker.id(), "VmRSS:");
                    if std::env::var_os("BENCH_PROGRESS").is_some() {
                        eprintln!("{:>5.1} s: {} events done, worker RSS {} MiB", t.elapsed().as_secs_f64(), seen.len(), rss / 1024);
                    }
                    peak_rss = peak_rss.max(rss);
                }
            }
        }
        peak_rss
    };
    let (trickled, peak_rss) = tokio::join!(trickle, drain);
    if rate.is_some() {
        per_session = trickled;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let hwm = status_kib(worker.id(), "VmHWM:");
    let worker_cpu = cpu_secs(worker.id());
    let broker_cpu = cpu_secs(broker.pid) - broker_cpu_before;
    let own_cpu = cpu_secs(std::process::id()) - own_cpu_before;
    drop_consumer(reader).await;
    wait_committed(&broker.bootstrap, &topics[0], events).await;
    worker.terminate();
    let ids_total: usize = per_session.iter().sum();
    match (rate, raw_rate) {
        (Some(r), _) => println!(
            "trickle: {events} events ({ids_total} trace ids, {mix_name} mix over {SESSIONS} projects) at {r} events/s; done {elapsed:.1} s after the first"
        ),
        (None, Some(raw)) => println!(
            "intake: {events} events in {elapsed:.1} s = {:.0} events/s, {:.0} trace ids/s ({:.2} of the raw consume rate)",
            events as f64 / elapsed,
            ids_total as f64 / elapsed,
            events as f64 / elapsed / raw
        ),
        (None, None) => unreachable!("a backlog run measures the raw rate"),
    }
    let c = sim.sim.counters().clone();
    let minimum: usize = per_session.iter().map(|n| n.div_ceil(1000)).sum();
    println!(
        "delete calls: {} for {} ids (max {} per call); minimum {minimum} ({:.3} of it)",
        c.delete_calls_accepted,
        c.delete_ids_total,
        c.delete_ids_max,
        c.delete_calls_accepted as f64 / minimum as f64
    );
    println!(
        "CPU: worker {worker_cpu:.1} s, broker {broker_cpu:.1} s, this program (simulator and reader) {own_cpu:.1} s (2 cores: {:.1} core-seconds available)",
        2.0 * elapsed
    );
    println!(
        "worker peak RSS: {:.0} MiB (VmHWM), {:.0} MiB (highest sampled VmRSS)",
        hwm as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    let sent: HashSet<Uuid> = sim
        .sim
        .delete_calls(sim.ws)
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    println!(
        "distinct trace ids sent to the delete API: {} of {ids_total}",
        sent.len()
    );
    assert_eq!(sent.len(), ids_total, "every trace id reached the delete API");
}
