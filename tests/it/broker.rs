//! The test broker itself: a reader of a partition that several producers write at once sees every
//! offset, in order, with no holes; and the latest offset counts every record acknowledged. Tansu 0.6.0 unpatched raised the high watermark before it
//! stored the batch, so a fetch could return a later producer's batch while an earlier one was not
//! yet stored, and the reader moved past records it never got
//! (`scripts/tansu-fetch-no-holes.patch`).
//!
//! The window is short: at the default size this passes on the unpatched broker too. To see the
//! fault, hold the cores busy and write more:
//! `BROKER_BUSY_THREADS=6 BROKER_RECORDS_EACH=12500 cargo test --test it broker::`
//! (with `TANSU_HOME` pointing at an unpatched build).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use erasure_worker::kafka::{client_config, create_topics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::support::{broker, drop_consumer, knob, reader_from_start, unique};

const PRODUCERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_concurrent_producers_sees_every_offset_in_order() {
    let each = knob("BROKER_RECORDS_EACH", 3_000) as usize;
    let busy = Busy::start(knob("BROKER_BUSY_THREADS", 0) as usize);
    let bootstrap = &broker().bootstrap;
    let topic = unique("holes");
    create_topics(bootstrap, &[topic.as_str()], 1)
        .await
        .expect("create topic");

    let reader = reader_from_start(bootstrap, &[&topic], 1);

    // One record per produce request, from producers on connections of their own.
    let writers: Vec<_> = (0..PRODUCERS)
        .map(|w| {
            let topic = topic.clone();
            let producer: FutureProducer = client_config(bootstrap)
                .set("linger.ms", "0")
                .set("batch.num.messages", "1")
                .create()
                .expect("producer");
            tokio::spawn(async move {
                let mut pending = Vec::with_capacity(each);
                for i in 0..each {
                    let payload = format!("{w}-{i}");
                    let record = FutureRecord::<(), str>::to(&topic).partition(0).payload(&payload);
                    match producer.send_result(record) {
                        Ok(delivery) => pending.push(delivery),
                        Err((e, _)) => panic!("queueing: {e}"),
                    }
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                for delivery in pending {
                    delivery.await.expect("delivery").expect("acknowledged");
                }
            })
        })
        .collect();

    let total = (PRODUCERS * each) as i64;
    let mut next = 0;
    let mut jumps = Vec::new();
    let within = Duration::from_secs(300);
    let deadline = tokio::time::Instant::now() + within;
    while next < total {
        let m = match tokio::time::timeout_at(deadline, reader.recv()).await {
            Ok(m) => m.expect("reading"),
            Err(_) => break,
        };
        if m.offset() != next {
            jumps.push((next, m.offset()));
        }
        next = m.offset() + 1;
    }
    for w in writers {
        w.await.expect("producer task");
    }
    drop_consumer(reader).await;
    drop(busy);
    assert!(
        jumps.is_empty(),
        "the reader expected one offset and got another {} times (expected, got): {:?}",
        jumps.len(),
        &jumps[..jumps.len().min(10)]
    );
    assert_eq!(next, total, "the reader got to offset {next} of {total} in {within:?}");
}

/// A list-offsets "latest" (where a read of a partition to its end stops, as the intake's resolution
/// journal's does) counts every record acknowledged. Tansu 0.6.0 unpatched answered the base offset
/// of the batch stored last, plus one: for one batch of ten records, 1; and it stayed short until
/// more was produced (`scripts/tansu-list-offsets-latest.patch`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_offset_counts_every_record_acknowledged() {
    const RECORDS: i64 = 10;
    let bootstrap = &broker().bootstrap;
    let topic = unique("latest");
    create_topics(bootstrap, &[topic.as_str()], 1)
        .await
        .expect("create topic");
    // Queued at once and lingered over: one batch.
    let producer: FutureProducer = client_config(bootstrap)
        .set("linger.ms", "100")
        .create()
        .expect("producer");
    let deliveries: Vec<_> = (0..RECORDS)
        .map(|i| {
            let payload = i.to_string();
            let record = FutureRecord::<(), str>::to(&topic).partition(0).payload(&payload);
            producer.send_result(record).map_err(|(e, _)| e).expect("queued")
        })
        .collect();
    for delivery in deliveries {
        delivery.await.expect("delivery").expect("acknowledged");
    }
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", unique("latest"))
        .create()
        .expect("consumer");
    let (consumer, marks) = tokio::task::spawn_blocking(move || {
        let marks = consumer.fetch_watermarks(&topic, 0, Duration::from_secs(10));
        (consumer, marks)
    })
    .await
    .expect("watermarks");
    drop_consumer(consumer).await;
    assert_eq!(
        marks.expect("watermarks"),
        (0, RECORDS),
        "(low, high) after {RECORDS} records acknowledged"
    );
}

/// Threads that keep the cores busy until dropped, so the broker's threads are preempted often.
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn start(threads: usize) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..threads {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        Busy(stop)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
