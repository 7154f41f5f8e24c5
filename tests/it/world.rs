//! A test's own world: its topics, its simulator workspace and key, a worker config pointing at
//! both, a producer for input events and a reader of everything the worker publishes.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use erasure_worker::config::Config;
use erasure_worker::intake::Intake;
use erasure_worker::kafka::{client_config, create_topics};
use erasure_worker::verify::Verifier;
use langsmith_sim::Sim;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

pub use crate::record::Record;
pub use crate::support::Worker;
use crate::support::{broker, drop_consumer, reader_from_start, unique, Simulator};

pub struct World {
    pub prefix: String,
    /// Where the worker and the test's clients reach the broker.
    pub bootstrap: String,
    pub sim: Arc<Sim>,
    pub sim_url: String,
    /// Partitions of every topic.
    pub partitions: i32,
    pub ws: Uuid,
    pub key_file: PathBuf,
    pub producer: FutureProducer,
}

/// One record the worker published.
#[derive(Debug, Clone)]
pub struct Out {
    pub topic: String,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    /// The record's timestamp (when its producer queued it), in milliseconds since the epoch.
    pub timestamp: Option<i64>,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

impl World {
    pub async fn new(sim: &Simulator, partitions: i32) -> World {
        World::on(&broker().bootstrap, sim, partitions).await
    }

    /// A world on a broker of the test's own (reached at `bootstrap`).
    pub async fn on(bootstrap: &str, sim: &Simulator, partitions: i32) -> World {
        let prefix = unique("t");
        let topics: Vec<String> = erasure_testkit::TOPICS
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        create_topics(bootstrap, &names, partitions)
            .await
            .expect("create topics");
        let (ws, key) = sim.workspace();
        let key_file = std::env::temp_dir().join(format!("{prefix}.key"));
        std::fs::write(&key_file, &key).expect("write key file");
        // Large enough for the hostile suite's oversized records.
        let producer = client_config(bootstrap)
            .set("message.max.bytes", "16000000")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .expect("producer");
        World {
            prefix,
            bootstrap: bootstrap.to_owned(),
            sim: sim.sim.clone(),
            sim_url: sim.base_url.clone(),
            partitions,
            ws,
            key_file,
            producer,
        }
    }

    pub fn topic(&self, t: &str) -> String {
        format!("{}.{t}", self.prefix)
    }

    /// The worker's config as TOML; `extra` (TOML) is merged over it, table by table.
    pub fn config_toml(&self, extra: &str) -> String {
        let base = format!(
            r#"
event_source = "urn:erasure-worker:test"
[http]
listen = "127.0.0.1:0"
[kafka]
bootstrap = "{bootstrap}"
intake_group = "{prefix}.intake"
verifier_group = "{prefix}.verifier"
[kafka.properties]
"topic.metadata.refresh.interval.ms" = "1000"
[topics]
requests = "{prefix}.requests"
dlq = "{prefix}.dlq"
deletion_requested = "{prefix}.requested"
recheck = "{prefix}.recheck"
deletion_verified = "{prefix}.verified"
deletion_failed = "{prefix}.failed"
examples = "{prefix}.examples"
resolutions = "{prefix}.resolutions"
progress = "{prefix}.progress"
[window]
kind = "fixed"
delay = "5s"
[workspaces.main]
api_url = "{url}"
api_key_file = "{key}"
"#,
            bootstrap = self.bootstrap,
            prefix = self.prefix,
            url = self.sim_url,
            key = self.key_file.display(),
        );
        let mut config: toml::Table = base.parse().expect("base config is TOML");
        merge(&mut config, extra.parse().expect("extra config is TOML"));
        config.to_string()
    }

    pub fn config(&self, extra: &str) -> Config {
        Config::parse(&self.config_toml(extra)).expect("test config is valid")
    }

    /// Creates `n` projects; returns their ids.
    pub fn sessions(&self, n: usize) -> Vec<Uuid> {
        let mut state = self.sim.state();
        (0..n)
            .map(|i| {
                let new = serde_json::from_value(json!({"name": format!("project-{i}")})).unwrap();
                state.add_session(self.ws, new).unwrap()
            })
            .collect()
    }

    /// `n` new root traces in `session` of the main workspace, in the simulator.
    pub fn traces(&self, session: Uuid, n: usize) -> Vec<Uuid> {
        let gen = json!({"session_id": session, "traces": n, "return_ids": true});
        let (_, ids) = self
            .sim
            .state()
            .generate(self.ws, serde_json::from_value(gen).unwrap())
            .unwrap();
        ids
    }

    /// Publishes an erasure request (structured CloudEvents) with `data`.
    pub async fn publish(&self, data: Value) {
        self.publish_many(std::slice::from_ref(&data)).await;
    }

    /// Publishes many requests at once (structured CloudEvents, keyed by request id); returns
    /// where each landed, as (partition, offset).
    pub async fn publish_many(&self, data: &[Value]) -> Vec<(i32, i64)> {
        self.publish_records(&data.iter().map(Record::event).collect::<Vec<_>>())
            .await
    }

    pub async fn publish_raw(&self, key: Option<&str>, payload: &[u8], headers: &[(&str, &str)]) {
        let record = Record {
            key: key.map(str::to_owned),
            payload: payload.to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        };
        self.publish_records(&[record]).await;
    }

    /// Publishes records as given, waiting for every acknowledgement at the end.
    pub async fn publish_records(&self, records: &[Record]) -> Vec<(i32, i64)> {
        let topic = self.topic("requests");
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = rdkafka::message::OwnedHeaders::new();
            for (k, v) in &r.headers {
                headers = headers.insert(rdkafka::message::Header { key: k, value: Some(v) });
            }
            let mut record = FutureRecord::<str, [u8]>::to(&topic)
                .payload(&r.payload)
                .headers(headers);
            if let Some(k) = &r.key {
                record = record.key(k);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => pending.push(delivery),
                Err((e, _)) => panic!("queueing input: {e}"),
            }
        }
        let mut at = Vec::with_capacity(pending.len());
        for delivery in pending {
            let d = delivery.await.expect("delivery").expect("input acknowledged");
            at.push((d.partition, d.offset));
        }
        at
    }

    /// Starts the intake in this process; send on the returned channel to shut it down.
    pub fn start(&self, config: Config) -> Running {
        in_process(config, |config, clients, metrics, stop| {
            let intake = Intake::new(config, clients, metrics).expect("intake starts");
            intake.run(async move {
                let _ = stop.await;
            })
        })
    }

    /// Starts the verifier in this process; send on the returned channel to shut it down.
    pub fn start_verifier(&self, config: Config) -> Running {
        in_process(config, |config, clients, metrics, stop| {
            let verifier = Verifier::new(config, clients, metrics).expect("verifier starts");
            verifier.run(async move {
                let _ = stop.await;
            })
        })
    }

    /// Starts the worker binary with `role`; its log (info) goes to `{prefix}.{name}.log`.
    pub fn spawn_worker(&self, extra: &str, name: &str, role: &str) -> Worker {
        let path = std::env::temp_dir().join(format!("{}.{name}.toml", self.prefix));
        std::fs::write(&path, self.config_toml(extra)).unwrap();
        let log = std::fs::File::create(self.log_path(name)).expect("worker log file");
        Command::new(env!("CARGO_BIN_EXE_erasure-worker"))
            .args(["run", "--role", role, "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Worker)
            .expect("start the worker binary")
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}.{name}.log", self.prefix))
    }

    /// Reads the output topics (and the DLQ) until `done` says so, failing after `within`.
    pub async fn collect(&self, within: Duration, done: impl FnMut(&[Out]) -> bool) -> Vec<Out> {
        let (got, finished) = self.collect_until(within, done).await;
        assert!(
            finished,
            "outputs incomplete after {within:?}: {} records; last: {:?}{}",
            got.len(),
            got.last(),
            crate::support::log_tails(&self.prefix)
        );
        got
    }

    /// Reads the output topics (and the DLQ) until `done` says so or `within` ran out; says which.
    pub async fn collect_until(&self, within: Duration, done: impl FnMut(&[Out]) -> bool) -> (Vec<Out>, bool) {
        let all = ["requested", "failed", "verified", "dlq", "recheck", "examples"];
        self.collect_from(&all, within, done).await
    }

    /// Reads `topics` (short names) until `done` says so or `within` ran out; says which.
    pub async fn collect_from(
        &self,
        topics: &[&str],
        within: Duration,
        mut done: impl FnMut(&[Out]) -> bool,
    ) -> (Vec<Out>, bool) {
        // A record delivered twice is counted once.
        let topics: Vec<String> = topics.iter().map(|t| self.topic(t)).collect();
        let consumer = reader_from_start(&self.bootstrap, &topics, self.partitions);
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        let mut seen = HashSet::new();
        // `done` may be costly: ask it after a lull or every 500 records, not after each one.
        let mut unchecked = 0;
        loop {
            let lull = tokio::time::Instant::now() + Duration::from_millis(200);
            let m = match tokio::time::timeout_at(lull.min(deadline), consumer.recv()).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => panic!("reading outputs: {e}"),
                Err(_) if done(&got) => break,
                Err(_) if tokio::time::Instant::now() < deadline => continue,
                Err(_) => {
                    drop_consumer(consumer).await;
                    return (got, false);
                }
            };
            if !seen.insert((m.topic().to_owned(), m.partition(), m.offset())) {
                continue;
            }
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            got.push(Out {
                topic: m.topic().rsplit('.').next().unwrap_or_default().to_owned(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
                timestamp: m.timestamp().to_millis(),
            });
            unchecked += 1;
            if unchecked >= 500 {
                unchecked = 0;
                if done(&got) {
                    break;
                }
            }
        }
        drop_consumer(consumer).await;
        (got, true)
    }

    /// The committed offsets of the intake group on the requests topic, per partition.
    pub async fn committed(&self, partitions: i32) -> BTreeMap<i32, i64> {
        let with = self.committed_with_metadata(partitions).await;
        with.into_iter().map(|(p, (o, _))| (p, o)).collect()
    }

    /// The committed offsets of the intake group on the requests topic, per partition, with the
    /// metadata committed with each.
    pub async fn committed_with_metadata(&self, partitions: i32) -> BTreeMap<i32, (i64, String)> {
        let consumer: StreamConsumer = client_config(&self.bootstrap)
            .set("group.id", format!("{}.intake", self.prefix))
            .create()
            .expect("probe");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&self.topic("requests"), p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        let map = committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                (e.partition(), (offset, e.metadata().to_owned()))
            })
            .collect();
        drop(committed);
        drop_consumer(consumer).await;
        map
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// A role running in the test's process: send on the channel to shut it down, then await its end.
pub type Running = (oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>);

/// Runs the role that `role` builds (from the config, LangSmith clients, metrics and the shutdown
/// signal) on the test's runtime.
fn in_process<F, R>(config: Config, role: F) -> Running
where
    F: FnOnce(Config, erasure_worker::api::Clients, Arc<erasure_worker::metrics::Metrics>, oneshot::Receiver<()>) -> R,
    R: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let metrics = Arc::new(erasure_worker::metrics::Metrics::new());
    let clients = erasure_worker::api::clients(&config, &metrics).expect("clients");
    (tx, tokio::spawn(role(config, clients, metrics, rx)))
}

/// Output events of one kind, as their `data`.
pub fn data_of(outs: &[Out], topic: &str) -> Vec<Value> {
    outs.iter()
        .filter(|o| o.topic == topic)
        .map(|o| o.json()["data"].clone())
        .collect()
}
