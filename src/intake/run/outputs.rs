//! What the intake loop sends out and settles: dead letters, output events, their acknowledgements,
//! and the stored offsets once an event is complete.

use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;

use super::{Ack, Consumer_, State};
use crate::event;
use crate::intake::book::MsgKey;
use crate::output::{DeadLetter, Output};

impl State {
    pub(super) fn dead_letter(&mut self, key: MsgKey, m: &BorrowedMessage<'_>, why: event::Rejection) {
        self.intake.metrics.dlq.with_label_values(&[why.reason]).inc();
        let letter = DeadLetter::new(m, why);
        let (intake, tx) = (self.intake.clone(), self.tx.acks.clone());
        self.dlq_pending += 1;
        tokio::spawn(async move {
            letter.send(&intake.publisher, &intake.config.topics.dlq).await;
            let _ = tx.send(Ack::Dlq(key)).await;
        });
    }

    /// Publishes an output event of `key`. Encoded and queued here, so that while it waits for its
    /// acknowledgement only librdkafka's copy and a small task remain (thousands wait under a backlog).
    pub(super) fn publish(&mut self, key: MsgKey, output: Output) {
        if let Output::Failed(f) = &output {
            self.intake.metrics.failed.with_label_values(&[f.reason.as_str()]).inc();
        }
        let out = crate::output::encode(&self.intake.config, &output);
        drop(output);
        self.outputs_in_flight += 1;
        let (publisher, tx) = (self.intake.publisher.clone(), self.tx.acks.clone());
        match publisher.try_enqueue(&out.record()) {
            Ok(delivery) => {
                drop(out);
                tokio::spawn(async move {
                    publisher.confirm(delivery).await;
                    let _ = tx.send(Ack::Output(key)).await;
                });
            }
            // The local queue is full (or librdkafka refused): wait in a task of its own.
            Err(_) => {
                tokio::spawn(async move {
                    crate::output::publish_encoded(&publisher, out).await;
                    let _ = tx.send(Ack::Output(key)).await;
                });
            }
        }
    }

    pub(super) fn on_ack(&mut self, consumer: &Consumer_, ack: Ack) {
        match ack {
            Ack::Output(key) => {
                self.outputs_in_flight -= 1;
                if self.book.published(key) {
                    self.complete(consumer, key);
                }
            }
            Ack::Dlq(key) => {
                self.dlq_pending -= 1;
                self.complete(consumer, key);
            }
        }
    }

    /// The event is done: store the offset if the contiguous prefix moved (and the partition is still ours).
    pub(super) fn complete(&mut self, consumer: &Consumer_, key: MsgKey) {
        if self.generations.get(&key.partition) != Some(&key.generation) {
            return;
        }
        if let Some(last) = self.offsets.complete(key.partition, key.offset) {
            if let Err(e) = consumer.store_offset(&self.intake.config.topics.requests, key.partition, last) {
                tracing::debug!(partition = key.partition, error = %e, "offset not stored (partition revoked?)");
            }
        }
    }
}
