//! What the roles write to Kafka: output events as records with stable ids, and the headers of a
//! dead-lettered record.

use crate::config::Config;
use crate::event::{
    self, DeletionFailed, DeletionRequested, DeletionVerified, ExamplesErased, ExamplesFailed, Incoming, Rejection,
};
use crate::ids::event_id;
use crate::publish::{PublishError, Publisher, Record};

/// An output event.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// LangSmith accepted a delete (intake): to `deletion_requested`, for the verifier and auditors.
    Requested(DeletionRequested),
    /// A part to check again after the next window (verifier): to `recheck`.
    Recheck(DeletionRequested),
    Verified(DeletionVerified),
    Failed(DeletionFailed),
    /// Dataset examples erased (intake): to `examples`.
    ExamplesErased(ExamplesErased),
    ExamplesFailed(ExamplesFailed),
}

/// The parts an event names `ids` in: at most `max` ids each, with (part, parts); one empty part
/// when there are no ids (a failure that names none still says so).
pub fn parts_of<T>(ids: &[T], max: usize) -> impl Iterator<Item = (&[T], (u32, u32))> {
    let parts = ids.len().div_ceil(max).max(1) as u32;
    let chunks: Vec<&[T]> = if ids.is_empty() {
        vec![ids]
    } else {
        ids.chunks(max).collect()
    };
    chunks.into_iter().enumerate().map(move |(i, c)| (c, (i as u32, parts)))
}

/// An output event ready to publish.
pub struct Encoded {
    pub topic: String,
    /// The CloudEvents id: the same for the same logical event, so replays can be de-duplicated.
    pub id: String,
    /// The record key: the request id, so one request's events stay in order.
    pub key: String,
    pub payload: Vec<u8>,
}

pub fn encode(cfg: &Config, output: &Output) -> Encoded {
    let source = &cfg.event_source;
    let (topic, id, key, payload) = match output {
        Output::Requested(e) | Output::Recheck(e) => {
            let (topic, what) = match output {
                Output::Requested(_) => (&cfg.topics.deletion_requested, "requested"),
                _ => (&cfg.topics.recheck, "recheck"),
            };
            let id = event_id(&e.request_id, Some(e.session_id), e.part, what, e.attempt, &e.trace_ids);
            let p = event::encode(
                event::DELETION_REQUESTED_TYPE,
                &id,
                source,
                &e.request_id,
                e.accepted_at,
                e,
            );
            (topic, id, &e.request_id, p)
        }
        Output::Verified(e) => {
            let id = event_id(
                &e.request_id,
                e.session_id,
                e.part,
                "verified",
                e.attempts,
                &e.trace_ids,
            );
            let p = event::encode(
                event::DELETION_VERIFIED_TYPE,
                &id,
                source,
                &e.request_id,
                e.checked_at,
                e,
            );
            (&cfg.topics.deletion_verified, id, &e.request_id, p)
        }
        Output::Failed(e) => {
            let kind = format!("failed:{:?}", e.reason);
            let id = event_id(&e.request_id, e.session_id, e.part, &kind, e.attempts, &e.trace_ids);
            let p = event::encode(event::DELETION_FAILED_TYPE, &id, source, &e.request_id, e.failed_at, e);
            (&cfg.topics.deletion_failed, id, &e.request_id, p)
        }
        Output::ExamplesErased(e) => {
            let id = event_id(&e.request_id, None, e.part, "examples-erased", 0, &e.example_ids);
            let p = event::encode(event::EXAMPLES_ERASED_TYPE, &id, source, &e.request_id, e.erased_at, e);
            (&cfg.topics.examples, id, &e.request_id, p)
        }
        Output::ExamplesFailed(e) => {
            let kind = format!("examples-failed:{:?}", e.reason);
            let id = event_id(&e.request_id, None, e.part, &kind, 0, &e.example_ids);
            let p = event::encode(event::EXAMPLES_FAILED_TYPE, &id, source, &e.request_id, e.failed_at, e);
            (&cfg.topics.examples, id, &e.request_id, p)
        }
    };
    Encoded {
        topic: topic.clone(),
        id,
        key: key.clone(),
        payload,
    }
}

/// Publishes `output` and returns once Kafka acknowledged it. Nothing of it is kept meanwhile but
/// librdkafka's copy.
pub async fn publish(cfg: &Config, publisher: &Publisher, output: Output) -> Result<(), PublishError> {
    let out = encode(cfg, &output);
    drop(output);
    publish_encoded(publisher, out).await
}

/// Publishes an encoded event, freeing it once librdkafka holds its copy.
pub async fn publish_encoded(publisher: &Publisher, out: Encoded) -> Result<(), PublishError> {
    let delivery = publisher.enqueue(&out.record()).await?;
    drop(out);
    publisher.confirm(delivery).await
}

impl Encoded {
    /// The Kafka record: keyed by request id, with the CloudEvents content type and id as headers.
    pub fn record(&self) -> Record<'_> {
        Record {
            topic: &self.topic,
            key: Some(self.key.as_bytes()),
            payload: &self.payload,
            headers: vec![
                ("content-type", event::CE_CONTENT_TYPE.as_bytes()),
                ("ce_id", self.id.as_bytes()),
            ],
            partition: None,
        }
    }
}

/// A record for the DLQ: the original key and bytes untouched, the original headers plus why and
/// where from.
pub struct DeadLetter {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    /// How many of `headers`, at the front, are the original's.
    originals: usize,
}

impl DeadLetter {
    pub fn new(m: &rdkafka::message::OwnedMessage, why: Rejection) -> DeadLetter {
        use rdkafka::message::Message;
        let incoming = Incoming::from_message(m);
        DeadLetter {
            originals: incoming.headers.len(),
            headers: dlq_headers(&incoming, why),
            payload: m.payload().unwrap_or_default().to_vec(),
            key: m.key().map(<[u8]>::to_vec),
        }
    }

    fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.key.as_ref().map_or(0, Vec::len) + self.payload.len() + headers
    }

    /// Publishes to `topic` and returns once Kafka acknowledged it. A record too large for the
    /// producer goes without its payload, then without its original headers, then without its key
    /// (each omission is named in a header); `dlq_topic`, `dlq_partition` and `dlq_offset` still
    /// point at the original. Sent as it was, it would be refused for ever and stall its partition.
    pub async fn send(mut self, publisher: &Publisher, topic: &str) -> Result<(), PublishError> {
        // Room for the record's framing and the omission headers.
        self.shrink(publisher.max_bytes().saturating_sub(1024));
        let record = Record {
            topic,
            key: self.key.as_deref(),
            payload: &self.payload,
            headers: self.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect(),
            partition: None,
        };
        publisher.send(record).await
    }

    /// Drops the payload, then the original headers, then the key, until the record fits `limit`.
    fn shrink(&mut self, limit: usize) {
        if self.size() > limit {
            let bytes = std::mem::take(&mut self.payload).len();
            self.headers
                .push(("dlq_payload_omitted".into(), bytes.to_string().into_bytes()));
        }
        if self.size() > limit {
            self.headers.drain(..self.originals);
            self.headers
                .push(("dlq_headers_omitted".into(), self.originals.to_string().into_bytes()));
            self.originals = 0;
        }
        if self.size() > limit {
            self.key = None;
            self.headers.push(("dlq_key_omitted".into(), b"true".to_vec()));
        }
    }
}

/// The original headers, untouched, plus why and where from.
fn dlq_headers(rec: &Incoming<'_>, why: Rejection) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = rec
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.unwrap_or_default().to_vec()))
        .collect();
    headers.push(("dlq_reason".into(), why.reason.as_str().as_bytes().to_vec()));
    headers.push(("dlq_detail".into(), why.detail.into_bytes()));
    headers.push(("dlq_topic".into(), rec.topic.as_bytes().to_vec()));
    headers.push(("dlq_partition".into(), rec.partition.to_string().into_bytes()));
    headers.push(("dlq_offset".into(), rec.offset.to_string().into_bytes()));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(payload: usize, header: usize, key: usize) -> DeadLetter {
        let mut headers = vec![("h".to_owned(), vec![b'v'; header]), ("g".to_owned(), vec![])];
        headers.push(("dlq_reason".into(), b"too_large".to_vec()));
        headers.push(("dlq_offset".into(), b"7".to_vec()));
        DeadLetter {
            key: Some(vec![b'k'; key]),
            payload: vec![b'p'; payload],
            headers,
            originals: 2,
        }
    }

    fn names(d: &DeadLetter) -> Vec<&str> {
        d.headers.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn a_letter_that_fits_is_sent_whole() {
        let mut d = letter(100, 100, 10);
        d.shrink(1000);
        assert_eq!((d.payload.len(), d.key.as_ref().map(Vec::len)), (100, Some(10)));
        assert_eq!(names(&d), ["h", "g", "dlq_reason", "dlq_offset"]);
    }

    #[test]
    fn the_payload_goes_first_then_the_original_headers_then_the_key() {
        let mut d = letter(5000, 100, 10);
        d.shrink(1000);
        assert!(d.payload.is_empty());
        assert_eq!(names(&d), ["h", "g", "dlq_reason", "dlq_offset", "dlq_payload_omitted"]);

        let mut d = letter(5000, 5000, 10);
        d.shrink(1000);
        assert_eq!(
            names(&d),
            ["dlq_reason", "dlq_offset", "dlq_payload_omitted", "dlq_headers_omitted"]
        );
        assert_eq!(d.headers[3].1, b"2", "the count of original headers omitted");
        assert!(d.key.is_some());

        let mut d = letter(5000, 5000, 5000);
        d.shrink(1000);
        assert!(d.key.is_none() && d.size() <= 1000);
        assert_eq!(names(&d).last(), Some(&"dlq_key_omitted"));
    }

    #[test]
    fn parts_hold_at_most_max_ids_and_a_failure_naming_none_still_has_one() {
        let ids: Vec<u32> = (0..2500).collect();
        let parts: Vec<(usize, (u32, u32))> = parts_of(&ids, 1000).map(|(c, p)| (c.len(), p)).collect();
        assert_eq!(parts, [(1000, (0, 3)), (1000, (1, 3)), (500, (2, 3))]);
        let none: Vec<(usize, (u32, u32))> = parts_of::<u32>(&[], 1000).map(|(c, p)| (c.len(), p)).collect();
        assert_eq!(none, [(0, (0, 1))]);
    }
}
