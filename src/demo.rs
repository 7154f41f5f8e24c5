//! `erasure-worker demo`: the main job on embedded defaults, against a broker and the LangSmith
//! simulator (`scripts/demo` starts both on loopback). It gives itself a simulator workspace with two
//! projects and traces, a dataset example of the person and one made from a trace, publishes sample requests (explicit, by project name, by metadata, one with a
//! trace the simulator never deletes, one invalid), runs both roles in this process with a fast
//! window, and prints each request's audit trail as it happens, then a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use uuid::Uuid;

use erasure_worker::config::Config;
use erasure_worker::{api, event, intake, kafka, metrics, topics, verify};

const PERSON: &str = "user-4711";

/// A request's trail: the trace ids it named and the dataset examples it reaches, those verified
/// (examples: erased) and failed, and whether it was dead-lettered.
#[derive(Default)]
struct Trail {
    ids: BTreeSet<String>,
    examples: BTreeSet<String>,
    verified: BTreeSet<String>,
    failed: BTreeSet<String>,
    dlq: bool,
}

impl Trail {
    fn done(&self) -> bool {
        let ended = |i: &String| self.verified.contains(i) || self.failed.contains(i);
        self.dlq || (!self.ids.is_empty() && self.ids.iter().chain(&self.examples).all(ended))
    }
}

/// The sample data: a workspace key, two projects, and the traces each request names.
struct Sample {
    key: String,
    support: Value,
    checkout: Value,
    explicit: Vec<String>,
    by_name: Vec<String>,
    selected: Vec<String>,
    stuck: Vec<String>,
    /// A dataset example of the person the metadata request names.
    examples: Vec<String>,
    /// A dataset example made from the first trace the explicit request names.
    made_from: Vec<String>,
}

pub async fn run(bootstrap: &str, langsmith_url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    kafka::create_topics(bootstrap, &topics::ALL, 3).await?;
    let sample = sample(langsmith_url).await?;
    let dir = std::env::temp_dir().join(format!("erasure-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_file = dir.join("key");
    std::fs::write(&key_file, &sample.key)?;
    let config = Config::parse(&format!(
        "[kafka]\nbootstrap = \"{bootstrap}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[intake]\nlinger = \"300ms\"\n\
         [window]\nkind = \"fixed\"\ndelay = \"4s\"\n[verifier]\nmax_attempts = 2\n\
         [workspaces.main]\napi_url = \"{langsmith_url}\"\napi_key_file = \"{}\"\n",
        key_file.display()
    ))?;
    println!("demo: broker {bootstrap}, LangSmith simulator {langsmith_url} (deletion job every 2 s)");
    println!("demo: the worker checks 4 s after each accepted delete, at most 2 times\n");

    let requests = requests(&sample);
    let mut trails: BTreeMap<String, Trail> = BTreeMap::new();
    let named = [&sample.explicit, &sample.by_name, &sample.selected, &sample.stuck];
    for ((id, _), ids) in requests.iter().zip(named) {
        trails.entry((*id).to_owned()).or_default().ids = ids.iter().cloned().collect();
    }
    trails.entry("gdpr-metadata".into()).or_default().examples = sample.examples.iter().cloned().collect();
    trails.entry("gdpr-explicit".into()).or_default().examples = sample.made_from.iter().cloned().collect();
    trails.entry("gdpr-invalid".into()).or_default();

    let metrics = std::sync::Arc::new(metrics::Metrics::new());
    let clients = api::clients(&config, &metrics)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let intake = intake::Intake::new(config.clone(), clients.clone(), metrics.clone())?;
    let verifier = verify::Verifier::new(config.clone(), clients, metrics)?;
    let roles = [
        tokio::spawn(intake.run(wait(stopped.clone()))),
        tokio::spawn(verifier.run(wait(stopped.clone()))),
    ];
    publish(bootstrap, &requests).await?;
    follow(bootstrap, &mut trails, started).await?;
    let _ = stop.send(true);
    for role in roles {
        role.await??;
    }
    let _ = std::fs::remove_dir_all(&dir);
    summary(&trails, started)
}

/// A simulator workspace with two projects and their traces, a dataset example of the person (in
/// two versions) and one made from a trace the explicit request names; one trace the deletion job never deletes; the deletion job every 2 s.
async fn sample(langsmith_url: &str) -> anyhow::Result<Sample> {
    let http = reqwest::Client::new();
    let sim = |path: &str| format!("{langsmith_url}/_sim/{path}");
    let key = format!("lsv2_pt_demo_{}", Uuid::new_v4().simple());
    let ws: Value = post(&http, &sim("workspaces"), json!({"name": "demo", "api_keys": [key]})).await?;
    let ws = ws["id"]
        .as_str()
        .context("the simulator answered no workspace id")?
        .to_owned();
    let loaded = post(
        &http,
        &sim(&format!("workspaces/{ws}/load")),
        json!({"sessions": [{"name": "support-bot"}, {"name": "checkout-agent"}],
               "examples": [{"dataset_id": Uuid::new_v4(), "inputs": {"question": "Where is my order?"},
                             "outputs": {"answer": "On its way."}, "metadata": {"user_id": format!("{PERSON}0")},
                             "history": [{"at": "2026-01-01T00:00:00Z", "inputs": {"question": "Where?"},
                                          "outputs": null, "metadata": {"user_id": format!("{PERSON}0")}}]}]}),
    )
    .await?;
    let examples = strings(&loaded["examples"]);
    let (support, checkout) = (loaded["sessions"][0].clone(), loaded["sessions"][1].clone());
    let gen_url = sim(&format!("workspaces/{ws}/generate"));
    let generate = |session: &Value, traces: u32, metadata: Value| {
        let body = json!({"session_id": session, "traces": traces, "return_ids": true, "metadata": metadata});
        let (http, url) = (http.clone(), gen_url.clone());
        async move { Ok::<_, anyhow::Error>(strings(&post(&http, &url, body).await?["trace_ids"])) }
    };
    let explicit = generate(&support, 3, json!([])).await?;
    let made_from = json!({"examples": [{"dataset_id": Uuid::new_v4(), "inputs": {"question": "Can I return it?"},
                                         "source_trace_id": explicit[0], "source_session_id": support}]});
    let made_from = strings(&post(&http, &sim(&format!("workspaces/{ws}/load")), made_from).await?["examples"]);
    let by_name = generate(&checkout, 2, json!([])).await?;
    let person = json!([{"key": "user_id", "prefix": PERSON, "distinct": 1}]);
    let selected = generate(&support, 2, person).await?;
    let stuck = generate(&checkout, 2, json!([])).await?;
    put(&http, &sim("never"), json!({"traces": [stuck[0]]})).await?;
    put(&http, &sim("window"), json!({"mode": "every", "seconds": 2})).await?;
    Ok(Sample {
        key,
        support,
        checkout,
        explicit,
        by_name,
        selected,
        stuck,
        examples,
        made_from,
    })
}

/// The strings of a JSON array (none for anything else).
fn strings(v: &Value) -> Vec<String> {
    let items = v.as_array().into_iter().flatten();
    items.filter_map(|t| t.as_str().map(str::to_owned)).collect()
}

/// The sample requests: explicit ids, by project name, by metadata, one with a stuck trace.
fn requests(s: &Sample) -> [(&'static str, Value); 4] {
    [
        (
            "gdpr-explicit",
            json!({"targets": [{"session_id": s.support, "trace_ids": s.explicit}]}),
        ),
        (
            "gdpr-by-name",
            json!({"targets": [{"session_name": "checkout-agent", "trace_ids": s.by_name}]}),
        ),
        (
            "gdpr-metadata",
            json!({"targets": [{"metadata": {"user_id": format!("{PERSON}0")}, "session_name": "support-bot"}]}),
        ),
        (
            "gdpr-stuck",
            json!({"targets": [{"session_id": s.checkout, "trace_ids": s.stuck}]}),
        ),
    ]
}

/// Publishes the requests, and one invalid event.
async fn publish(bootstrap: &str, requests: &[(&str, Value)]) -> anyhow::Result<()> {
    let producer: FutureProducer = kafka::client_config(bootstrap).create()?;
    for (id, data) in requests {
        let mut data = data.clone();
        data["request_id"] = json!(id);
        let event = json!({"specversion": "1.0", "id": format!("evt-{id}"), "source": "urn:demo",
                           "type": "erasure.requested.v1", "data": data});
        send(&producer, id, &serde_json::to_vec(&event)?).await?;
    }
    send(
        &producer,
        "gdpr-invalid",
        br#"{"specversion": "1.0", "data": {"request_id": "#,
    )
    .await
}

/// Prints each request's events as they come, until every request ended or 60 s passed.
async fn follow(bootstrap: &str, trails: &mut BTreeMap<String, Trail>, started: Instant) -> anyhow::Result<()> {
    let reader: StreamConsumer = kafka::client_config(bootstrap)
        .set("group.id", format!("demo-reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()?;
    reader.subscribe(&[
        topics::DELETION_REQUESTED,
        topics::RECHECK,
        topics::DELETION_VERIFIED,
        topics::DELETION_FAILED,
        topics::EXAMPLES,
        topics::DLQ,
    ])?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut result = Ok(());
    while !trails.values().all(Trail::done) {
        let m = match tokio::time::timeout_at(deadline, reader.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                result = Err(e.into());
                break;
            }
            Err(_) => break,
        };
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let Some(trail) = trails.get_mut(&key) else { continue };
        let what = match trail.note(&m) {
            Ok(what) => what,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        println!("{:>5.1} s  {key:<14} {what}", started.elapsed().as_secs_f64());
    }
    tokio::task::spawn_blocking(move || drop(reader)).await?;
    result
}

impl Trail {
    /// Takes in an event of the request; says what it was.
    fn note(&mut self, m: &BorrowedMessage<'_>) -> anyhow::Result<String> {
        if m.topic() == topics::DLQ {
            self.dlq = true;
            let reason = m
                .headers()
                .and_then(|h| {
                    use rdkafka::message::Headers;
                    h.iter()
                        .find(|x| x.key == "dlq_reason")
                        .and_then(|x| x.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                })
                .unwrap_or_default();
            return Ok(format!("dead-lettered ({reason})"));
        }
        let event: Value = serde_json::from_slice(m.payload().unwrap_or_default())?;
        let d = &event["data"];
        let ids = strings(&d["trace_ids"]);
        Ok(match m.topic() {
            topics::DELETION_REQUESTED => format!(
                "deletion requested: {} traces, check after {}",
                ids.len(),
                d["verify_after"].as_str().unwrap_or("?")
            ),
            topics::RECHECK => format!(
                "still present: {} traces, delete re-requested, attempt {}",
                ids.len(),
                d["attempt"]
            ),
            topics::DELETION_VERIFIED => {
                self.verified.extend(ids.iter().cloned());
                format!("verified gone: {} traces (attempt {})", ids.len(), d["attempts"])
            }
            topics::EXAMPLES if event["type"] == event::EXAMPLES_ERASED_TYPE => {
                let examples = strings(&d["example_ids"]);
                self.verified.extend(examples.iter().cloned());
                format!(
                    "dataset examples erased: {} (hard-deleted, every version; read back empty)",
                    examples.len()
                )
            }
            topics::EXAMPLES => {
                let examples = strings(&d["example_ids"]);
                self.failed.extend(examples.iter().cloned());
                format!(
                    "FAILED: {} dataset examples, {}",
                    examples.len(),
                    d["reason"].as_str().unwrap_or("?")
                )
            }
            _ => {
                self.failed.extend(ids.iter().cloned());
                let (reason, detail) = (d["reason"].as_str().unwrap_or("?"), d["detail"].as_str().unwrap_or(""));
                format!("FAILED: {} traces, {reason} ({detail})", ids.len())
            }
        })
    }
}

fn summary(trails: &BTreeMap<String, Trail>, started: Instant) -> anyhow::Result<()> {
    println!("\nsummary after {:.1} s:", started.elapsed().as_secs_f64());
    for (id, t) in trails {
        let state = if t.dlq {
            "invalid: in erasure.requests.dlq".to_owned()
        } else {
            let ended = |s: &BTreeSet<String>, of: &BTreeSet<String>| s.intersection(of).count();
            let mut state = format!(
                "{} verified, {} failed of {} traces",
                ended(&t.verified, &t.ids),
                ended(&t.failed, &t.ids),
                t.ids.len()
            );
            if !t.examples.is_empty() {
                let erased = ended(&t.verified, &t.examples);
                state.push_str(&format!("; {erased} of {} dataset examples erased", t.examples.len()));
            }
            state
        };
        println!("  {id:<14} {state}");
    }
    if !trails.values().all(Trail::done) {
        bail!("not every request reached a terminal event within 60 s");
    }
    Ok(())
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let r = http.post(url).json(&body).send().await?.error_for_status()?;
    Ok(r.json().await?)
}

async fn put(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let r = http.put(url).json(&body).send().await?.error_for_status()?;
    Ok(r.json().await?)
}

async fn send(producer: &FutureProducer, key: &str, payload: &[u8]) -> anyhow::Result<()> {
    let record = FutureRecord::to(topics::REQUESTS).key(key).payload(payload);
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("publishing {key}: {e}"))?;
    Ok(())
}
