//! What to do with each answer: done, retry later, wait out a rate limit, stop (auth), give up on
//! these ids (another 4xx), or give up on this project (a 403 after a few tries).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

#[derive(Debug, PartialEq)]
pub enum Action {
    Done,
    RateLimited(Option<Duration>),
    /// 5xx, 408, and transport errors: retry with backoff.
    Retry,
    /// 401, a 403 that names the key or the workspace, or a redirect the client does not follow
    /// (to another host): the workspace is misconfigured.
    Unauthorized,
    /// Any other 403: LangSmith evaluates run permissions per project (ABAC), so this is about the
    /// project (or the role), not the whole workspace. Retried a few times, then final.
    Forbidden,
    /// Any other 4xx: these ids will never be accepted as sent.
    Permanent,
}

/// The error LangSmith gives an organization-scoped key that names no workspace.
const NEEDS_WORKSPACE: &[u8] = b"org_scoped_key_requires_workspace";

pub fn classify(status: StatusCode, headers: &HeaderMap, body_hint: &[u8]) -> Action {
    match status.as_u16() {
        200..=299 => Action::Done,
        429 => Action::RateLimited(retry_after(headers)),
        300..=399 | 401 => Action::Unauthorized,
        403 if body_hint.windows(NEEDS_WORKSPACE.len()).any(|w| w == NEEDS_WORKSPACE) => Action::Unauthorized,
        403 => Action::Forbidden,
        408 | 425 | 500..=599 => Action::Retry,
        _ => Action::Permanent,
    }
}

/// How long a 429 asks to wait: `retry-after-ms` (as LangSmith's generated clients read it), else
/// `Retry-After` in seconds (fractions allowed) or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = |v: &str| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0);
    if let Some(ms) = text("retry-after-ms").and_then(seconds) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = text(RETRY_AFTER.as_str())?;
    if let Some(secs) = seconds(v) {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn classification() {
        let h = HeaderMap::new();
        assert_eq!(classify(StatusCode::ACCEPTED, &h, b""), Action::Done);
        assert_eq!(classify(StatusCode::OK, &h, b""), Action::Done);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            Action::RateLimited(None)
        );
        assert_eq!(classify(StatusCode::UNAUTHORIZED, &h, b""), Action::Unauthorized);
        assert_eq!(classify(StatusCode::TEMPORARY_REDIRECT, &h, b""), Action::Unauthorized);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &h, b"{\"detail\":\"Forbidden\"}"),
            Action::Forbidden
        );
        assert_eq!(
            classify(
                StatusCode::FORBIDDEN,
                &h,
                br#"{"error":"org_scoped_key_requires_workspace"}"#
            ),
            Action::Unauthorized
        );
        assert_eq!(classify(StatusCode::BAD_GATEWAY, &h, b""), Action::Retry);
        assert_eq!(classify(StatusCode::REQUEST_TIMEOUT, &h, b""), Action::Retry);
        assert_eq!(classify(StatusCode::UNPROCESSABLE_ENTITY, &h, b""), Action::Permanent);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers(&[("retry-after", "7")]), b""),
            Action::RateLimited(Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn retry_after_in_every_form() {
        fn at(pairs: &[(&'static str, &str)]) -> Option<Duration> {
            retry_after(&headers(pairs))
        }
        assert_eq!(at(&[("retry-after", "1.5")]), Some(Duration::from_millis(1500)));
        assert_eq!(at(&[("retry-after-ms", "250")]), Some(Duration::from_millis(250)));
        assert_eq!(
            at(&[("retry-after-ms", "250"), ("retry-after", "9")]),
            Some(Duration::from_millis(250)),
            "the finer header wins"
        );
        let in_a_minute = (chrono::Utc::now() + chrono::TimeDelta::seconds(60)).to_rfc2822();
        let d = at(&[("retry-after", &in_a_minute)]).expect("an HTTP date");
        assert!(d > Duration::from_secs(55) && d <= Duration::from_secs(60), "{d:?}");
        assert_eq!(
            at(&[("retry-after", "Mon, 01 Jan 2001 00:00:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(at(&[("retry-after", "-3")]), None);
        assert_eq!(at(&[("retry-after", "soon")]), None);
        assert_eq!(at(&[]), None);
    }
}
