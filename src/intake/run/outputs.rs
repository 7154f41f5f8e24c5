//! What the intake loop sends out and settles: dead letters, output events, their acknowledgements,
//! and the stored offsets once an event is complete.

use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;

use super::{Ack, Consumer_, State};
use crate::event;
use crate::intake::book::MsgKey;
use crate::output::{DeadLetter, Output};
use crate::publish::PublishError;
use crate::telemetry::{DeadLettered, Failed, Occurrence};

impl State {
    pub(super) fn dead_letter(&mut self, key: MsgKey, m: &BorrowedMessage<'_>, why: event::Rejection) {
        DeadLettered::of(m, &why).emit(Some(&self.intake.metrics));
        let letter = DeadLetter::new(m, why);
        let (intake, tx) = (self.intake.clone(), self.tx.acks.clone());
        self.dlq_pending += 1;
        tokio::spawn(async move {
            let sent = letter.send(&intake.publisher, &intake.config.topics.dlq).await;
            let _ = tx.send(Ack::Dlq(key, sent)).await;
        });
    }

    /// Publishes an output event of `key`. Encoded and queued here, so that while it waits for its
    /// acknowledgement only librdkafka's copy and a small task remain (thousands wait under a backlog).
    pub(super) fn publish(&mut self, key: MsgKey, output: Output) {
        if let Output::Failed(f) = &output {
            Failed::of(f).emit(Some(&self.intake.metrics));
        }
        let out = crate::output::encode(&self.intake.config, &output);
        drop(output);
        self.outputs_in_flight += 1;
        let (publisher, tx) = (self.intake.publisher.clone(), self.tx.acks.clone());
        match publisher.try_enqueue(&out.record()) {
            Ok(delivery) => {
                drop(out);
                tokio::spawn(async move {
                    let sent = publisher.confirm(delivery).await;
                    let _ = tx.send(Ack::Output(key, sent)).await;
                });
            }
            // The local queue is full (or librdkafka refused): wait in a task of its own.
            Err(_) => {
                tokio::spawn(async move {
                    let sent = crate::output::publish_encoded(&publisher, out).await;
                    let _ = tx.send(Ack::Output(key, sent)).await;
                });
            }
        }
    }

    /// An output or a dead letter is settled. One that Kafka will never take stops the worker,
    /// loudly, with its input event unstored.
    pub(super) fn on_ack(&mut self, consumer: &Consumer_, ack: Ack) -> anyhow::Result<()> {
        match ack {
            Ack::Output(key, sent) => {
                self.outputs_in_flight -= 1;
                sent.map_err(|e| unpublished(key, e))?;
                if self.book.published(key) {
                    self.complete(consumer, key);
                }
            }
            Ack::Dlq(key, sent) => {
                self.dlq_pending -= 1;
                sent.map_err(|e| unpublished(key, e))?;
                self.complete(consumer, key);
            }
        }
        Ok(())
    }

    /// The event is done: store the offset if the contiguous prefix moved (and the partition is still
    /// ours, or ours again).
    pub(super) fn complete(&mut self, consumer: &Consumer_, key: MsgKey) {
        let last = self.fence.complete(key.partition, key.offset, key.generation);
        self.store(consumer, key.partition, last);
    }

    pub(super) fn store(&self, consumer: &Consumer_, partition: i32, last: Option<i64>) {
        let Some(last) = last else { return };
        if let Err(e) = consumer.store_offset(&self.intake.config.topics.requests, partition, last) {
            tracing::debug!(partition, error = %e, "offset not stored (partition revoked?)");
        }
    }
}

fn unpublished(key: MsgKey, e: PublishError) -> anyhow::Error {
    anyhow::anyhow!(
        "an output of the event at partition {} offset {} was not published ({e}); stopping, so that \
         the event is replayed once the cause is mended",
        key.partition,
        key.offset
    )
}
