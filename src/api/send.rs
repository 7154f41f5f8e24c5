//! The request loop every call goes through: gate, headers, classification, retries, metrics.

use std::sync::atomic::Ordering;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use super::retry::{classify, Action};
use super::{Answer, Class, LangSmith, Refused};
use crate::backoff::backoff;
use crate::telemetry::{DeprecatedAnswer, Occurrence};

/// Tries of a request answered 403 before the answer is final: a permission just granted may take
/// a moment to apply, but a project LangSmith keeps refusing must not hold the rest.
const FORBIDDEN_ATTEMPTS: u32 = 3;

/// What one request has met so far.
#[derive(Default)]
struct Tally {
    attempt: u32,
    forbidden: u32,
    server_errors: u32,
}

/// When a request answered 5xx again and again gives up: after `server_errors` of them in a row,
/// if the class got other final answers since it had `answered_before` ([`super::Gate::answered`]).
#[derive(Debug, Clone, Copy)]
pub struct SplitAfter {
    pub server_errors: u32,
    pub answered_before: u64,
}

enum Step {
    Final(Answer),
    Again,
    Wait(std::time::Duration),
}

impl LangSmith {
    /// Sends until the answer is final. Never gives up on transient failures: the caller's work stays
    /// in flight (and its offsets uncommitted) until LangSmith answers or the worker shuts down.
    pub(super) async fn send(&self, class: Class, build: impl Fn(&reqwest::Client) -> RequestBuilder) -> Answer {
        self.send_bounded(class, build, None).await
    }

    /// [`LangSmith::send`], but with `split`, its 5xx answers in a row make the last one final,
    /// provided other requests of the class got answers since `split.answered_before`: a server
    /// that is up and keeps failing this one request may be choking on what it holds. A server
    /// failing everything (an outage) and transport errors are still retried without end.
    pub(super) async fn send_bounded(
        &self,
        class: Class,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
        split: Option<SplitAfter>,
    ) -> Answer {
        let gate = self.gate(class);
        let mut tally = Tally::default();
        loop {
            let waited = std::time::Instant::now();
            gate.ready().await;
            self.observe(|m| {
                m.limiter_wait_seconds
                    .with_label_values(&[class.as_str()])
                    .observe(waited.elapsed().as_secs_f64())
            });
            let mut req = build(&self.http).header("x-api-key", self.key.expose());
            if let Some(t) = self.tenant.get() {
                req = req.header("x-tenant-id", t);
            }
            let sent = tokio::time::Instant::now();
            let result = req.send().await;
            self.count(class, &result, sent);
            let step = match result {
                Err(e) => {
                    // Without the URL: its query string can name a project.
                    tracing::warn!(workspace = %self.alias, ?class, error = %e.without_url(), attempt = tally.attempt, "LangSmith request failed; retrying");
                    Step::Wait(backoff(tally.attempt, self.retry.base, self.retry.max))
                }
                Ok(resp) => self.judge(class, resp, sent, &mut tally, split).await,
            };
            match step {
                Step::Final(answer) => return answer,
                Step::Again => continue,
                Step::Wait(wait) => {
                    tally.attempt = tally.attempt.saturating_add(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// What an answer means for the request that got it: final, again at once (after a 429 pause
    /// the gate applies), or again after a wait.
    async fn judge(
        &self,
        class: Class,
        resp: reqwest::Response,
        sent: tokio::time::Instant,
        tally: &mut Tally,
        split: Option<SplitAfter>,
    ) -> Step {
        let status = resp.status();
        let headers = resp.headers().clone();
        self.watch_deprecation(class, resp.url().path(), &headers);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(workspace = %self.alias, ?class, %status, error = %e.without_url(), "LangSmith answer cut short; retrying");
                return Step::Wait(backoff(tally.attempt, self.retry.base, self.retry.max));
            }
        };
        let gate = self.gate(class);
        let mut action = classify(status, &headers, &body);
        if action == Action::Forbidden && class == Class::Sessions {
            // Listing or reading projects is a workspace-level call.
            action = Action::Unauthorized;
        }
        if matches!(action, Action::Forbidden | Action::Unauthorized) && class == Class::Audit {
            // The audit log needs an Enterprise plan and an organization role: a refusal there says
            // nothing about the workspace's key, and the lookup is only ever a bonus.
            action = Action::Permanent;
        }
        match action {
            Action::Done | Action::Permanent => Step::Final(self.answered(gate, status, body)),
            Action::Forbidden => {
                tally.forbidden += 1;
                tracing::warn!(workspace = %self.alias, ?class, forbidden = tally.forbidden, "LangSmith forbids this project's call");
                if tally.forbidden >= FORBIDDEN_ATTEMPTS {
                    return Step::Final(self.answered(gate, status, body));
                }
                Step::Wait(backoff(tally.forbidden, self.retry.base, self.retry.max))
            }
            Action::RateLimited(retry_after) => {
                let pause = gate.rate_limited(retry_after, self.retry.rate_limited_base, sent);
                tracing::info!(workspace = %self.alias, ?class, pause_ms = pause.as_millis() as u64, "rate limited by LangSmith");
                Step::Again
            }
            Action::Unauthorized => {
                if !self.broken.swap(true, Ordering::Relaxed) {
                    tracing::error!(workspace = %self.alias, %status,
                        "LangSmith refuses this workspace's key (or api_url redirects elsewhere): its work is held until fixed");
                }
                Step::Wait(self.retry.max)
            }
            Action::Retry => {
                tally.server_errors += u32::from(status.is_server_error());
                let give_up = split
                    .is_some_and(|s| tally.server_errors >= s.server_errors && gate.answered() > s.answered_before);
                if give_up {
                    return Step::Final(Answer { status, body });
                }
                tracing::warn!(workspace = %self.alias, ?class, %status, attempt = tally.attempt, "LangSmith error; retrying");
                Step::Wait(backoff(tally.attempt, self.retry.base, self.retry.max))
            }
        }
    }

    /// Calls until the answer is final and, for a 2xx, until its body parses as `T`: a 2xx whose
    /// body does not parse (a proxy's page, a cut answer) is retried, never taken as a refusal.
    pub(super) async fn fetch<T, F, Fut>(&self, class: Class, call: F) -> Result<T, Refused>
    where
        T: serde::de::DeserializeOwned,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let mut attempt = 0u32;
        loop {
            let a = call().await;
            if !a.ok() {
                return Err(a.into());
            }
            match serde_json::from_slice(&a.body) {
                Ok(t) => return Ok(t),
                Err(e) => {
                    // Position only: serde's message could echo the body.
                    tracing::warn!(workspace = %self.alias, ?class, status = %a.status, line = e.line(), column = e.column(),
                        attempt, "LangSmith's answer does not parse; retrying");
                    tokio::time::sleep(backoff(attempt, self.retry.base, self.retry.max)).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    fn answered(&self, gate: &super::Gate, status: StatusCode, body: bytes::Bytes) -> Answer {
        gate.succeeded();
        if self.broken.swap(false, Ordering::Relaxed) {
            tracing::info!(workspace = %self.alias, "LangSmith accepts the key again");
        }
        Answer { status, body }
    }

    fn count(&self, class: Class, result: &reqwest::Result<reqwest::Response>, sent: tokio::time::Instant) {
        self.observe(|m| {
            let status = match result {
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => "429",
                Ok(r) => ["1xx", "2xx", "3xx", "4xx", "5xx"][(r.status().as_u16() / 100).clamp(1, 5) as usize - 1],
                Err(_) => "error",
            };
            m.requests.with_label_values(&[class.as_str(), status]).inc();
            m.request_seconds
                .with_label_values(&[class.as_str()])
                .observe(sent.elapsed().as_secs_f64());
        });
    }

    /// LangSmith announces a deprecated endpoint with `Deprecation` and `Sunset` headers: counted on
    /// every answer, logged once per endpoint class (a path can hold a project id).
    fn watch_deprecation(&self, class: Class, path: &str, headers: &HeaderMap) {
        let deprecation = headers.get("deprecation").and_then(|v| v.to_str().ok());
        let sunset = headers.get("sunset").and_then(|v| v.to_str().ok());
        if deprecation.is_none_or(|d| d.eq_ignore_ascii_case("false")) && sunset.is_none() {
            return;
        }
        let first = {
            let mut seen = self.deprecated.lock().unwrap_or_else(|e| e.into_inner());
            let first = !seen.contains(&class);
            if first {
                seen.push(class);
            }
            first
        };
        let (workspace, class) = (self.alias.as_str(), class.as_str());
        let answer = DeprecatedAnswer {
            workspace,
            class,
            path,
            deprecation,
            sunset,
            first,
        };
        answer.emit(self.metrics.as_deref());
    }
}
