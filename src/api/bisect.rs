//! One delete batch: send it; if LangSmith rejects it for good (a 4xx other than auth and rate
//! limits), split it in halves until the ids at fault are isolated, so the others still go through.

use std::collections::HashMap;

use uuid::Uuid;

use super::LangSmith;

impl LangSmith {
    /// Deletes `ids` of `session`; returns the ids refused for good, with the reason.
    pub async fn delete_all(&self, session: Uuid, ids: &[Uuid]) -> HashMap<Uuid, String> {
        let mut rejected = HashMap::new();
        let mut stack = vec![ids];
        while let Some(chunk) = stack.pop() {
            if chunk.is_empty() {
                continue;
            }
            let answer = self.delete(session, chunk).await;
            if answer.ok() {
                continue;
            }
            if let [id] = chunk {
                rejected.insert(*id, format!("LangSmith answered HTTP {}", answer.status.as_u16()));
            } else {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                stack.push(b);
                stack.push(a);
            }
        }
        rejected
    }
}
