//! One delete batch: send it; if LangSmith rejects it for good (a 4xx other than auth and rate
//! limits), split it in halves until the ids at fault are isolated, so the others still go through.
//! A 403 is about the project (or the role), not about ids: the whole batch fails at once.

use std::collections::HashMap;

use reqwest::StatusCode;
use uuid::Uuid;

use super::{LangSmith, Refusal};

impl LangSmith {
    /// Deletes `ids` of `session`; returns the ids refused for good, with the reason.
    pub async fn delete_all(&self, session: Uuid, ids: &[Uuid]) -> HashMap<Uuid, Refusal> {
        let mut refused = HashMap::new();
        let mut stack = vec![ids];
        while let Some(chunk) = stack.pop() {
            if chunk.is_empty() {
                continue;
            }
            let answer = self.delete(session, chunk).await;
            if answer.ok() {
                continue;
            }
            if chunk.len() == 1 || answer.status == StatusCode::FORBIDDEN {
                let why = answer.refusal("the delete");
                refused.extend(chunk.iter().map(|id| (*id, why.clone())));
            } else {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                stack.push(b);
                stack.push(a);
            }
        }
        refused
    }
}
