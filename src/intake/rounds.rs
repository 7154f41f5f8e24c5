//! Calls that concurrent asks share, in rounds: a task per kind of call takes every ask waiting
//! when a round starts, and asks made meanwhile wait for the next round.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

pub type Asks<A, R> = mpsc::UnboundedSender<(A, oneshot::Sender<R>)>;

pub async fn ask<A, R>(asks: &Asks<A, R>, a: A) -> R {
    let (reply, answer) = oneshot::channel();
    let gone = "rounds run while a handle lives";
    asks.send((a, reply)).expect(gone);
    answer.await.expect(gone)
}

/// A task answering asks in rounds: `round` gets every ask waiting, and answers each in order.
pub fn rounds<A, R, F, Fut>(round: F) -> Asks<A, R>
where
    A: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<A>) -> Fut + Send + 'static,
    Fut: Future<Output = Vec<R>> + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(A, oneshot::Sender<R>)>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut waiting = vec![first];
            while let Ok(more) = rx.try_recv() {
                waiting.push(more);
            }
            let (asks, replies): (Vec<A>, Vec<_>) = waiting.into_iter().unzip();
            for (answer, reply) in round(asks).await.into_iter().zip(replies) {
                let _ = reply.send(answer);
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn asks_waiting_when_a_round_starts_share_it() {
        let (started, mut rounds_seen) = mpsc::unbounded_channel();
        let asks = rounds(move |asks: Vec<u32>| {
            let started = started.clone();
            async move {
                let _ = started.send(asks.len());
                asks.iter().map(|a| a * 10).collect::<Vec<_>>()
            }
        });
        let (replies, answers): (Vec<_>, Vec<_>) = (0..3).map(|_| oneshot::channel()).unzip();
        for (i, reply) in replies.into_iter().enumerate() {
            asks.send((i as u32, reply)).unwrap();
        }
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.unwrap());
        }
        assert_eq!(got, vec![0, 10, 20]);
        assert_eq!(rounds_seen.recv().await, Some(3), "three asks waiting, one round");
    }
}
