//! The producer: idempotent, `acks=all`, and a `send` that returns only once Kafka has the record.
//! Records waiting for acknowledgement live only in librdkafka's queue.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::api::retry::backoff;

#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    max_bytes: usize,
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MAX_BYTES: usize = 1_000_000;

/// A record to publish; headers are (name, value) pairs.
pub struct Record<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl Publisher {
    pub fn new(mut config: ClientConfig) -> Result<Publisher, rdkafka::error::KafkaError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        let max_bytes = config
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_BYTES);
        Ok(Publisher {
            producer: config.create()?,
            max_bytes,
        })
    }

    /// The largest record (key, payload and headers) the producer accepts: `message.max.bytes`.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Sends until Kafka acknowledges: [`Publisher::enqueue`], then [`Publisher::confirm`].
    pub async fn send(&self, record: Record<'_>) {
        let delivery = self.enqueue(&record).await;
        self.confirm(delivery).await;
    }

    /// Hands the record to librdkafka, which copies it: the caller may free its buffers at once, so
    /// records waiting for their acknowledgement cost only librdkafka's copy. Waits while the local
    /// queue is full.
    pub async fn enqueue(&self, record: &Record<'_>) -> DeliveryFuture {
        let mut attempt = 0;
        loop {
            match self.try_enqueue(record) {
                Ok(delivery) => return delivery,
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    tracing::warn!(topic = record.topic, error = %e, attempt, "queueing a record failed; retrying");
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(200), Duration::from_secs(10))).await;
                    attempt += 1;
                }
            }
        }
    }

    /// [`Publisher::enqueue`] without waiting: fails when the local queue is full (or on any error).
    pub fn try_enqueue(&self, record: &Record<'_>) -> Result<DeliveryFuture, KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let mut r = FutureRecord::<[u8], [u8]>::to(record.topic)
            .payload(record.payload)
            .headers(headers);
        if let Some(k) = record.key {
            r = r.key(k);
        }
        self.producer.send_result(r).map_err(|(e, _)| e)
    }

    /// Waits for Kafka's acknowledgement. librdkafka already retries within `message.timeout.ms`; past
    /// that this sends the record again (from librdkafka's copy) with backoff, because an output
    /// event must never be dropped.
    pub async fn confirm(&self, mut delivery: DeliveryFuture) {
        let mut attempt = 0;
        loop {
            let failed = match delivery.await {
                Ok(Ok(_)) => return,
                Ok(Err((e, message))) => {
                    tracing::warn!(topic = message.topic(), error = %e, attempt, "publishing failed; retrying");
                    message
                }
                Err(_) => {
                    tracing::error!("librdkafka dropped a record without a delivery report");
                    return;
                }
            };
            // Boxed, like the enqueue below: a record waiting for its acknowledgement (the common
            // case) then costs a small future.
            Box::pin(tokio::time::sleep(backoff(
                attempt,
                Duration::from_millis(200),
                Duration::from_secs(10),
            )))
            .await;
            attempt += 1;
            let headers: Vec<(&str, &[u8])> = failed
                .headers()
                .map(|h| h.iter().map(|x| (x.key, x.value.unwrap_or_default())).collect())
                .unwrap_or_default();
            let record = Record {
                topic: failed.topic(),
                key: failed.key(),
                payload: failed.payload().unwrap_or_default(),
                headers,
            };
            delivery = Box::pin(self.enqueue(&record)).await;
        }
    }

    /// Waits for everything queued to be delivered (shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush did not finish");
        }
    }
}
