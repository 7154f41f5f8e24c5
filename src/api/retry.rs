//! What to do with each answer: done, retry later, wait out a rate limit, stop (auth), or give up
//! on these ids (another 4xx).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

#[derive(Debug, PartialEq)]
pub enum Action {
    Done,
    RateLimited(Option<Duration>),
    /// 5xx, 408, and transport errors: retry with backoff.
    Retry,
    /// 401/403: the workspace is misconfigured.
    Unauthorized,
    /// Any other 4xx: these ids will never be accepted as sent.
    Permanent,
}

pub fn classify(status: StatusCode, headers: &HeaderMap) -> Action {
    match status.as_u16() {
        200..=299 => Action::Done,
        429 => Action::RateLimited(retry_after(headers)),
        401 | 403 => Action::Unauthorized,
        408 | 425 | 500..=599 => Action::Retry,
        _ => Action::Permanent,
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// A random duration in [d/2, d]: spreads retries of many callers apart.
pub fn jitter(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    d / 2 + d.mul_f64((r % 10_000) as f64 / 20_000.0)
}

/// Capped exponential backoff with jitter for the `attempt`-th retry (0-based).
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    jitter(base.saturating_mul(1u32 << attempt.min(20)).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let h = HeaderMap::new();
        assert_eq!(classify(StatusCode::ACCEPTED, &h), Action::Done);
        assert_eq!(classify(StatusCode::OK, &h), Action::Done);
        assert_eq!(classify(StatusCode::TOO_MANY_REQUESTS, &h), Action::RateLimited(None));
        assert_eq!(classify(StatusCode::FORBIDDEN, &h), Action::Unauthorized);
        assert_eq!(classify(StatusCode::BAD_GATEWAY, &h), Action::Retry);
        assert_eq!(classify(StatusCode::REQUEST_TIMEOUT, &h), Action::Retry);
        assert_eq!(classify(StatusCode::UNPROCESSABLE_ENTITY, &h), Action::Permanent);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h),
            Action::RateLimited(Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let (base, max) = (Duration::from_millis(200), Duration::from_secs(30));
        for attempt in 0..40 {
            let d = backoff(attempt, base, max);
            assert!(d <= max && d >= base / 2, "{attempt}: {d:?}");
        }
        assert!(backoff(10, base, max) >= max / 2);
    }
}
