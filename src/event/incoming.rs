//! A record as it came off the topic, borrowed from the consumer's message.

use super::dlq::{reject, DlqReason, Rejection};

/// A record as it came off the topic.
pub struct Incoming<'a> {
    pub payload: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl<'a> Incoming<'a> {
    /// The record as consumed.
    pub fn from_message(m: &'a rdkafka::message::OwnedMessage) -> Incoming<'a> {
        use rdkafka::message::{Headers, Message};
        Incoming {
            payload: m.payload(),
            headers: m
                .headers()
                .map(|h| h.iter().map(|x| (x.key, x.value)).collect())
                .unwrap_or_default(),
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
        }
    }
}

impl Incoming<'_> {
    pub(super) fn header(&self, name: &str) -> Result<Option<&str>, Rejection> {
        match self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            None | Some((_, None)) => Ok(None),
            Some((_, Some(v))) => match std::str::from_utf8(v) {
                Ok(s) => Ok(Some(s)),
                Err(_) => reject(DlqReason::InvalidEnvelope, format!("header {name} is not UTF-8")),
            },
        }
    }
}
