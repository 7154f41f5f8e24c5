//! One gate per (workspace, endpoint class): a `governor` rate limiter every attempt passes, plus a
//! shared pause that a 429 sets for *all* callers of the class, not just the one that got it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::retry::jitter;

/// LangSmith's rate-limit window is up to 60 s: backing off longer gains nothing.
const MAX_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

pub struct Gate {
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
    consecutive_429: AtomicU32,
}

impl Gate {
    pub fn new(per_second: u32) -> Gate {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Gate {
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            paused_until: Mutex::new(None),
            consecutive_429: AtomicU32::new(0),
        }
    }

    fn paused_until(&self) -> Option<Instant> {
        *self.paused_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits out any 429 pause, then takes a permit. Returns how long it waited.
    pub async fn ready(&self) -> Duration {
        let start = Instant::now();
        while let Some(until) = self.paused_until().filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
        self.limiter.until_ready().await;
        start.elapsed()
    }

    /// A 429: pause every caller for `Retry-After` when given, else for an exponential, jittered
    /// backoff that starts at `base` and stops growing at 60 s. Returns the pause.
    pub fn rate_limited(&self, retry_after: Option<Duration>, base: Duration) -> Duration {
        let n = self.consecutive_429.fetch_add(1, Ordering::Relaxed).min(16);
        let pause = match retry_after {
            Some(d) => d.min(MAX_RATE_LIMIT_PAUSE * 10),
            None => jitter(base.saturating_mul(1 << n).min(MAX_RATE_LIMIT_PAUSE)),
        };
        let until = Instant::now() + pause;
        let mut slot = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
        pause
    }

    /// A request got through: the 429 streak is over.
    pub fn succeeded(&self) {
        self.consecutive_429.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_caller() {
        let gate = std::sync::Arc::new(Gate::new(1000));
        gate.rate_limited(Some(Duration::from_secs(5)), Duration::from_secs(1));
        let other = gate.clone();
        let waited = tokio::spawn(async move { other.ready().await }).await.unwrap();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_without_retry_after_grows_and_caps_at_a_minute() {
        let gate = Gate::new(1000);
        let pauses: Vec<Duration> = (0..10)
            .map(|_| gate.rate_limited(None, Duration::from_secs(2)))
            .collect();
        assert!(
            pauses[0] >= Duration::from_secs(1) && pauses[0] <= Duration::from_secs(2),
            "{pauses:?}"
        );
        assert!(pauses[3] >= Duration::from_secs(8), "{pauses:?}");
        assert!(pauses.iter().all(|p| *p <= MAX_RATE_LIMIT_PAUSE));
        gate.succeeded();
        assert!(gate.rate_limited(None, Duration::from_secs(2)) <= Duration::from_secs(2));
    }
}
