//! The producer: idempotent, `acks=all`, and a `send` that returns only once Kafka has the record.
//! Records waiting for acknowledgement live only in librdkafka's queue.

use std::future::Future;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::backoff::backoff;

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
    /// The partition, where the record's place matters more than its key's (the resolution
    /// journal's); `None` leaves it to the partitioner.
    pub partition: Option<i32>,
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
    pub async fn send(&self, record: Record<'_>) -> Result<(), PublishError> {
        let delivery = self.enqueue(&record).await?;
        self.confirm(delivery).await
    }

    /// Hands the record to librdkafka, which copies it: the caller may free its buffers at once, so
    /// records waiting for their acknowledgement cost only librdkafka's copy. Waits while the local
    /// queue is full; retries other errors, but for those that can never succeed.
    pub async fn enqueue(&self, record: &Record<'_>) -> Result<DeliveryFuture, PublishError> {
        let mut attempt = 0;
        loop {
            match self.try_enqueue(record) {
                Ok(delivery) => return Ok(delivery),
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    refused_for_good(&e)?;
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
        if let Some(p) = record.partition {
            r = r.partition(p);
        }
        self.producer.send_result(r).map_err(|(e, _)| e)
    }

    /// Waits for Kafka's acknowledgement. librdkafka already retries within `message.timeout.ms`; past
    /// that this sends the record again (from librdkafka's copy) with backoff, because an output
    /// event must never be dropped. A delivery that ends without a report (librdkafka dropped the
    /// record) or with an error that can never succeed is an error, never a success: the caller
    /// must not count the record as published.
    pub async fn confirm<E>(
        &self,
        delivery: impl Future<Output = Result<OwnedDeliveryResult, E>>,
    ) -> Result<(), PublishError> {
        let mut failed = match judge(delivery.await, 0)? {
            None => return Ok(()),
            Some(failed) => failed,
        };
        for attempt in 1.. {
            // Boxed, like the enqueue below: a record waiting for its acknowledgement (the common
            // case) then costs a small future.
            Box::pin(tokio::time::sleep(backoff(
                attempt - 1,
                Duration::from_millis(200),
                Duration::from_secs(10),
            )))
            .await;
            let headers: Vec<(&str, &[u8])> = failed
                .headers()
                .map(|h| h.iter().map(|x| (x.key, x.value.unwrap_or_default())).collect())
                .unwrap_or_default();
            let record = Record {
                topic: failed.topic(),
                key: failed.key(),
                payload: failed.payload().unwrap_or_default(),
                headers,
                // Where it was bound for (the partitioner's choice is the same for the same key).
                partition: (failed.partition() >= 0).then_some(failed.partition()),
            };
            let delivery = Box::pin(self.enqueue(&record)).await?;
            failed = match judge(delivery.await, attempt)? {
                None => return Ok(()),
                Some(failed) => failed,
            };
        }
        unreachable!("the attempts never run out")
    }

    /// Waits for everything queued to be delivered (shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush did not finish");
        }
    }
}

/// Why a record was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("librdkafka dropped the record without a delivery report (is the producer closing?)")]
    Cancelled,
    #[error("Kafka refuses the record for good: {0}")]
    Refused(RDKafkaErrorCode),
}

/// Errors no retry can mend: the record is too large for the producer or the broker.
fn refused_for_good(e: &KafkaError) -> Result<(), PublishError> {
    let code = match e {
        KafkaError::MessageProduction(code) => *code,
        _ => return Ok(()),
    };
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge
        | RDKafkaErrorCode::MessageBatchTooLarge
        | RDKafkaErrorCode::InvalidRecord => {
            tracing::error!(error = %e, "Kafka refuses a record for good");
            Err(PublishError::Refused(code))
        }
        _ => Ok(()),
    }
}

/// A delivery report: `None` when acknowledged, the record to send again, or an error.
fn judge<E>(report: Result<OwnedDeliveryResult, E>, attempt: u32) -> Result<Option<OwnedMessage>, PublishError> {
    match report {
        Ok(Ok(_)) => Ok(None),
        Ok(Err((e, message))) => {
            refused_for_good(&e)?;
            tracing::warn!(topic = message.topic(), error = %e, attempt, "publishing failed; retrying");
            Ok(Some(message))
        }
        Err(_) => {
            tracing::error!("librdkafka dropped a record without a delivery report");
            Err(PublishError::Cancelled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(max_bytes: &str) -> Publisher {
        let mut config = crate::kafka::client_config("127.0.0.1:9");
        config.set("message.max.bytes", max_bytes);
        Publisher::new(config).unwrap()
    }

    #[tokio::test]
    async fn a_delivery_dropped_without_a_report_is_an_error_not_a_success() {
        let p = publisher("1000000");
        let dropped = std::future::ready(Err::<OwnedDeliveryResult, ()>(()));
        assert!(matches!(p.confirm(dropped).await, Err(PublishError::Cancelled)));
    }

    #[tokio::test]
    async fn a_record_too_large_fails_at_once_instead_of_retrying_for_ever() {
        let p = publisher("2000");
        let payload = vec![b'x'; 5000];
        let record = Record {
            topic: "t",
            key: None,
            payload: &payload,
            headers: Vec::new(),
            partition: None,
        };
        let sent = tokio::time::timeout(Duration::from_secs(10), p.send(record)).await;
        let refused = sent.expect("refused within 10 s, not retried");
        assert!(
            matches!(
                refused,
                Err(PublishError::Refused(RDKafkaErrorCode::MessageSizeTooLarge))
            ),
            "{refused:?}"
        );
    }
}
