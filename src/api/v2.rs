//! Where LangSmith's v2 ("SmithDB") API lives. The official SDK moved it from `/v2/...` to
//! `/api/v2/...` (langsmith-sdk 39e01539); which prefixes a given server answers is not documented.
//! By default `/api/v2` is tried first and `/v2` once on a 404, and whichever answers is kept. A
//! configured prefix is used as it is.

use std::sync::atomic::{AtomicU8, Ordering};

use reqwest::StatusCode;
use serde_json::Value;

use super::{Answer, Class, LangSmith};
use crate::telemetry::{Occurrence, V2PrefixSettled};

pub const DEFAULT: &str = "/api/v2";
pub const FALLBACK: &str = "/v2";

const UNKNOWN: u8 = 0;
const DEFAULT_ANSWERS: u8 = 1;
const FALLBACK_ANSWERS: u8 = 2;

pub struct V2Prefix {
    configured: Option<String>,
    state: AtomicU8,
}

impl V2Prefix {
    pub fn new(configured: Option<&str>) -> V2Prefix {
        V2Prefix {
            configured: configured.map(|p| p.trim_end_matches('/').to_owned()),
            state: AtomicU8::new(UNKNOWN),
        }
    }

    /// The prefix to try first.
    pub fn current(&self) -> &str {
        match (&self.configured, self.state.load(Ordering::Relaxed)) {
            (Some(p), _) => p,
            (None, FALLBACK_ANSWERS) => FALLBACK,
            (None, _) => DEFAULT,
        }
    }

    /// Whether a 404 from the default prefix should be tried again under the fallback.
    fn may_fall_back(&self) -> bool {
        self.configured.is_none() && self.state.load(Ordering::Relaxed) == UNKNOWN
    }

    /// Remembers that `prefix` answered; true the first time (to log it once).
    fn settle(&self, prefix: &str) -> bool {
        let state = if prefix == FALLBACK {
            FALLBACK_ANSWERS
        } else {
            DEFAULT_ANSWERS
        };
        self.configured.is_none()
            && self
                .state
                .compare_exchange(UNKNOWN, state, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl LangSmith {
    /// `POST {v2 prefix}{path}` with `body`, finding the prefix on first use.
    pub(super) async fn post_v2(&self, path: &str, body: &Value) -> Answer {
        self.ensure_tenant().await;
        let first = self.v2.current().to_owned();
        let answer = self.post_v2_at(&first, path, body).await;
        if answer.status != StatusCode::NOT_FOUND {
            self.v2_settled(&first);
            return answer;
        }
        let settled = self.v2.current().to_owned();
        if settled != first {
            // Another call found where v2 answers while this one waited: ask there.
            return self.post_v2_at(&settled, path, body).await;
        }
        if !self.v2.may_fall_back() {
            return answer;
        }
        let second = self.post_v2_at(FALLBACK, path, body).await;
        if second.status != StatusCode::NOT_FOUND {
            self.v2_settled(FALLBACK);
        }
        second
    }

    async fn post_v2_at(&self, prefix: &str, path: &str, body: &Value) -> Answer {
        let url = format!("{}{prefix}{path}", self.root);
        self.send(Class::QueryV2, |c| c.post(&url).json(body)).await
    }

    fn v2_settled(&self, prefix: &str) {
        if self.v2.settle(prefix) {
            let workspace = &self.alias;
            V2PrefixSettled { workspace, prefix }.emit(self.metrics.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_falls_back_once_and_a_configured_prefix_never() {
        let p = V2Prefix::new(None);
        assert_eq!(p.current(), DEFAULT);
        assert!(p.may_fall_back());
        assert!(p.settle(FALLBACK), "first settlement is news");
        assert!(!p.settle(DEFAULT), "then it is kept");
        assert_eq!(p.current(), FALLBACK);
        assert!(!p.may_fall_back());

        let fixed = V2Prefix::new(Some("/custom/v2/"));
        assert_eq!(fixed.current(), "/custom/v2");
        assert!(!fixed.may_fall_back());
        assert!(!fixed.settle(FALLBACK));
        assert_eq!(fixed.current(), "/custom/v2");
    }
}
