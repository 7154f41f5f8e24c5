//! The producer: idempotent, `acks=all`, and a `send` that returns only once Kafka has the record.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::api::retry::backoff;

#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
}

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
        Ok(Publisher {
            producer: config.create()?,
        })
    }

    /// Sends until Kafka acknowledges. librdkafka already retries within `message.timeout.ms`; past
    /// that this keeps trying with backoff, because an output event must never be dropped.
    pub async fn send(&self, record: Record<'_>) {
        let mut attempt = 0;
        loop {
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
            match self.producer.send(r, Duration::from_secs(30)).await {
                Ok(_) => return,
                Err((e, _)) => {
                    tracing::warn!(topic = record.topic, error = %e, attempt, "publishing failed; retrying");
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(200), Duration::from_secs(10))).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Waits for everything queued to be delivered (shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush did not finish");
        }
    }
}
