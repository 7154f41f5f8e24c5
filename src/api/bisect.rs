//! One delete batch: send it; if LangSmith refuses it for good (a 4xx other than auth and rate
//! limits), split it in halves until the ids at fault are isolated, so the others still go through.
//! A 403 (the project's permissions) or a 404 (the project is gone) is about the whole batch: it
//! fails at once. A batch answered 5xx again and again while other calls get answers (the server is
//! up) is split too, so one id the server chokes on cannot hold the rest; that id fails only after a
//! longer run of 5xx of its own. When every call fails (an outage), nothing is split or failed:
//! batches are retried without end, like any transient failure. The hard delete of dataset
//! examples (`api/examples.rs`) walks the same way.

use std::collections::HashMap;
use std::future::Future;

use reqwest::StatusCode;
use uuid::Uuid;

use super::send::SplitAfter;
use super::{Answer, Class, LangSmith, Refusal};

/// 5xx answers in a row before a batch is split.
const SERVER_ERRORS_BEFORE_SPLIT: u32 = 5;
/// Then, for a single id while others went through, 5xx answers in a row before it fails.
const SERVER_ERRORS_BEFORE_FAILING: u32 = 20;

impl LangSmith {
    /// Deletes `ids` of `session`; returns the ids refused for good, with the reason.
    pub async fn delete_all(&self, session: Uuid, ids: &[Uuid]) -> HashMap<Uuid, Refusal> {
        let call = |chunk: Vec<Uuid>, split| async move { self.delete(session, &chunk, split).await };
        self.bisected(Class::Delete, "the delete", ids, call).await
    }

    /// Calls `call` (a call of `class` that does `what`) with `ids`, bisecting as above; returns the
    /// ids refused for good, with the reason.
    pub(super) async fn bisected<F, Fut>(
        &self,
        class: Class,
        what: &str,
        ids: &[Uuid],
        call: F,
    ) -> HashMap<Uuid, Refusal>
    where
        F: Fn(Vec<Uuid>, Option<SplitAfter>) -> Fut,
        Fut: Future<Output = Answer>,
    {
        // Answers to other calls since the walk began, its own halves included, show the server is up.
        let answered_before = self.gate(class).answered();
        let split = |server_errors| {
            Some(SplitAfter {
                server_errors,
                answered_before,
            })
        };
        let mut refused = HashMap::new();
        let mut choking = Vec::new();
        let mut accepted_any = false;
        let mut stack = vec![ids];
        while let Some(chunk) = stack.pop() {
            if chunk.is_empty() {
                continue;
            }
            let answer = call(chunk.to_vec(), split(SERVER_ERRORS_BEFORE_SPLIT)).await;
            let whole = matches!(answer.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND);
            match chunk {
                _ if answer.ok() => accepted_any = true,
                [id] if answer.status.is_server_error() => choking.push(*id),
                _ if chunk.len() == 1 || whole => {
                    let why = answer.refusal(what);
                    refused.extend(chunk.iter().map(|id| (*id, why.clone())));
                }
                _ => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    stack.push(b);
                    stack.push(a);
                }
            }
        }
        if accepted_any {
            // The server is up. Each suspect gets a longer run of its own before it fails, so an
            // error burst that hit it by chance (half the answers 5xx: 1 in 32 for five in a row)
            // does not fail an id that is fine.
            for id in choking {
                let answer = call(vec![id], split(SERVER_ERRORS_BEFORE_FAILING)).await;
                if !answer.ok() {
                    let mut why = answer.refusal(what);
                    if answer.status.is_server_error() {
                        why.detail = format!("LangSmith answered 5xx to this id alone {} times in a row while the rest of its batch went through", SERVER_ERRORS_BEFORE_SPLIT + SERVER_ERRORS_BEFORE_FAILING);
                    }
                    refused.insert(id, why);
                }
            }
        } else if !choking.is_empty() {
            // Nothing went through: no sign the server is up. Together again, retried without end.
            let answer = call(choking.clone(), None).await;
            if !answer.ok() {
                let why = answer.refusal(what);
                refused.extend(choking.into_iter().map(|id| (id, why.clone())));
            }
        }
        refused
    }
}
