//! What the intake loop sends out and settles: dead letters, output events, their acknowledgements,
//! and the stored offsets once an event is complete.

use rdkafka::message::OwnedMessage;

use super::acks::Pending;
use super::{Ack, State};
use crate::event;
use crate::intake::book::MsgKey;
use crate::intake::Intake;
use crate::output::{DeadLetter, Output};
use crate::publish::PublishError;
use crate::source::Source;
use crate::telemetry::{DeadLettered, Failed, Occurrence};

impl State {
    pub(super) fn dead_letter(&mut self, key: MsgKey, m: &OwnedMessage, why: event::Rejection) {
        DeadLettered::of(m, &why).emit(Some(&self.intake.metrics));
        let letter = DeadLetter::new(m, why);
        let intake = self.intake.clone();
        self.queued();
        self.dlq_pending += 1;
        self.acks.wait(Box::pin(async move {
            let sent = letter.send(&intake.publisher, &intake.config.topics.dlq).await;
            Ack::Dlq(key, sent)
        }));
    }

    /// Publishes an output event of `key`, or holds it while a rebalance is under way or Kafka
    /// acknowledges nothing (see `held`). Encoded and queued by the task that waits for the
    /// acknowledgements ([`queue`]), off the loop.
    pub(super) fn publish(&mut self, key: MsgKey, output: Output) {
        if !self.stopping && (self.rebalancing || !*self.tx.publishing.borrow()) {
            self.held.push((key, output));
            return;
        }
        if let Output::Failed(f) = &output {
            Failed::of(f).emit(Some(&self.intake.metrics));
        }
        self.queued();
        self.outputs_in_flight += 1;
        self.acks.publish(key, output);
    }

    /// Outputs and dead letters are settled. One that Kafka will never take stops the worker,
    /// loudly, with its input event unstored.
    pub(super) fn on_acks(&mut self, src: &mut Source, acks: Vec<Ack>) -> anyhow::Result<()> {
        self.acked_at = std::time::Instant::now();
        acks.into_iter().try_for_each(|ack| self.on_ack(src, ack))
    }

    fn on_ack(&mut self, src: &mut Source, ack: Ack) -> anyhow::Result<()> {
        match ack {
            Ack::Output(key, sent) => {
                self.outputs_in_flight -= 1;
                sent.map_err(|e| unpublished(key, e))?;
                if self.book.published(key) {
                    src.complete(key);
                }
            }
            Ack::Dlq(key, sent) => {
                self.dlq_pending -= 1;
                sent.map_err(|e| unpublished(key, e))?;
                src.complete(key);
            }
        }
        Ok(())
    }

    /// Outputs and dead letters queued and not yet acknowledged.
    pub(super) fn unacked(&self) -> usize {
        self.outputs_in_flight + self.dlq_pending
    }

    /// A record is about to be queued: with none waiting, Kafka's silence is timed from now.
    fn queued(&mut self) {
        if self.unacked() == 0 {
            self.acked_at = std::time::Instant::now();
        }
    }
}

fn unpublished(key: MsgKey, e: PublishError) -> anyhow::Error {
    anyhow::anyhow!(
        "an output of the event at partition {} offset {} was not published ({e}); stopping, so that \
         the event is replayed once the cause is mended",
        key.tp.1,
        key.offset
    )
}

/// Encodes `output` and queues it in librdkafka (`acks.rs` calls it, off the loop); what is left
/// waits for its acknowledgement.
pub(super) fn queue(intake: &Intake, key: MsgKey, output: Output) -> Pending {
    let out = crate::output::encode(&intake.config, &output);
    drop(output);
    let publisher = intake.publisher.clone();
    match publisher.try_enqueue(&out.record()) {
        Ok(delivery) => {
            drop(out);
            Box::pin(async move { Ack::Output(key, publisher.confirm(delivery).await) })
        }
        // The local queue is full (or librdkafka refused): queued again until it takes it.
        Err(_) => Box::pin(async move { Ack::Output(key, crate::output::publish_encoded(&publisher, out).await) }),
    }
}
