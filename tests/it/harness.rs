//! Proves the harness itself: a consumer group that commits and resumes through the real broker,
//! and a round trip to the simulator.

use std::collections::BTreeMap;
use std::time::Duration;

use erasure_worker::kafka::{client_config, create_topics};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;
use serde_json::{json, Value};

use crate::support::{broker, drop_consumer, simulator, unique};

fn consumer(group: &str) -> StreamConsumer {
    client_config(&broker().bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

/// Receives `n` messages within a deadline, as (partition, offset, payload).
async fn receive(c: &StreamConsumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived within 30 s", got.len()))
            .expect("a message");
        let header = m.headers().map(|h| h.get(0).key.to_owned());
        assert_eq!(header.as_deref(), Some("ce_id"), "headers survive the round trip");
        let payload = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
        got.push((m.partition(), m.offset(), payload));
    }
    got
}

#[tokio::test]
async fn a_consumer_group_commits_and_resumes_through_the_broker() {
    let topic = unique("harness");
    create_topics(&broker().bootstrap, &[&topic], 2)
        .await
        .expect("create topic");
    let producer: FutureProducer = client_config(&broker().bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..20 {
        let key = format!("k{i}");
        let payload = format!("m{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "ce_id",
            value: Some(&key),
        });
        let record = FutureRecord::to(&topic).key(&key).payload(&payload).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.expect("delivered");
    }

    let group = unique("group");
    let first = consumer(&group);
    first.subscribe(&[&topic]).unwrap();
    let head = receive(&first, 8).await;
    // Store and commit only what was handled: the next owner must resume right after it.
    let mut done = TopicPartitionList::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o, _) in &head {
        let e = next.entry(*p).or_default();
        *e = (*e).max(o + 1);
    }
    for (p, o) in &next {
        done.add_partition_offset(&topic, *p, rdkafka::Offset::Offset(*o))
            .unwrap();
    }
    first.commit(&done, CommitMode::Sync).expect("commit");
    drop(done);
    drop_consumer(first).await;

    let second = consumer(&group);
    second.subscribe(&[&topic]).unwrap();
    let tail = receive(&second, 12).await;
    drop_consumer(second).await;

    let mut all: Vec<String> = head.iter().chain(&tail).map(|(_, _, m)| m.clone()).collect();
    all.sort_by_key(|m| m[1..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(all, want, "every message exactly once across the restart");
    for (p, o, m) in &tail {
        assert!(
            *o >= next.get(p).copied().unwrap_or(0),
            "{m} at {p}/{o} was redelivered past the commit"
        );
    }
}

#[tokio::test]
async fn the_simulator_answers_over_http() {
    let sim = simulator();
    let (ws, key) = sim.workspace();
    let session = sim
        .sim
        .state()
        .add_session(ws, serde_json::from_value(json!({"name": "harness"})).unwrap())
        .unwrap();
    let http = reqwest::Client::new();
    let found: Value = http
        .get(format!("{}/api/v1/sessions?name=harness", sim.base_url))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["id"], json!(session));
    let resp = http
        .post(format!("{}/api/v1/runs/delete", sim.base_url))
        .header("x-api-key", &key)
        .json(&json!({"session_id": session, "trace_ids": [uuid::Uuid::new_v4()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(sim.sim.delete_calls(ws).len(), 1);
}
