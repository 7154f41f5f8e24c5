//! One gate per (workspace, endpoint class): a `governor` rate limiter every attempt passes, plus a
//! shared pause that a 429 sets for *all* callers of the class, not just the one that got it. The
//! rate follows this replica's share of the workspace's limits (`share.rs`): a new rate replaces the
//! limiter, and callers waiting on the old one wait again on the new; at 0 the gate is closed.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::jitter;

/// A limiter spacing requests evenly at `per_second`; none at 0.
fn limiter(per_second: f64) -> Option<Arc<DefaultDirectRateLimiter>> {
    if per_second <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / per_second.clamp(1e-6, 1e9));
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(NonZeroU32::MIN);
    Some(Arc::new(RateLimiter::direct(quota)))
}

/// LangSmith's rate-limit window is up to 60 s: backing off longer gains nothing.
const MAX_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

pub struct Gate {
    /// The limiter of the current rate; `None` while the rate is 0.
    limiter: watch::Sender<Option<Arc<DefaultDirectRateLimiter>>>,
    rate: Mutex<f64>,
    /// The current 429 pause: until when, and when it was set.
    paused: Mutex<Option<(Instant, Instant)>>,
    consecutive_429: AtomicU32,
    /// Final answers so far (2xx, or a 4xx that is final): a sign the server is up.
    answered: AtomicU64,
}

impl Gate {
    /// Spaces requests evenly at `per_second`, without bursts: a burst on top of the steady rate
    /// puts up to twice the rate into one second, and a server counting requests per window answers
    /// the excess with 429s (measured: 16 of 116 calls at a 20/s limit, and 0.07 of the limit used).
    /// `per_second` may be a fraction (0.3 is three requests in 10 s); config validation keeps it
    /// positive and finite.
    pub fn new(per_second: f64) -> Gate {
        Gate {
            limiter: watch::Sender::new(limiter(per_second)),
            rate: Mutex::new(per_second),
            paused: Mutex::new(None),
            consecutive_429: AtomicU32::new(0),
            answered: AtomicU64::new(0),
        }
    }

    /// Applies a new rate (0 closes the gate until a later rate opens it). Returns whether it changed.
    pub fn set_rate(&self, per_second: f64) -> bool {
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        if *rate == per_second {
            return false;
        }
        *rate = per_second;
        self.limiter.send_replace(limiter(per_second));
        true
    }

    fn paused_until(&self) -> Option<Instant> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(until, _)| until)
    }

    /// Waits out any 429 pause, then takes a permit. Returns how long it waited.
    pub async fn ready(&self) -> Duration {
        let start = Instant::now();
        while let Some(until) = self.paused_until().filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
        let mut current = self.limiter.subscribe();
        loop {
            let Some(limiter) = current.borrow_and_update().clone() else {
                // Closed: this replica owns no partitions of the role that calls.
                let _ = current.changed().await;
                continue;
            };
            tokio::select! {
                _ = limiter.until_ready() => break,
                // A new rate: wait on its limiter instead.
                _ = current.changed() => {}
            }
        }
        start.elapsed()
    }

    /// A 429 for a request sent at `sent`: pause every caller for `Retry-After` when given, else for
    /// an exponential, jittered backoff that starts at `base` and stops growing at 60 s. Requests
    /// already in flight when a pause began are part of the same episode: their 429s do not make
    /// the pause longer. Returns the pause.
    pub fn rate_limited(&self, retry_after: Option<Duration>, base: Duration, sent: Instant) -> Duration {
        let now = Instant::now();
        let mut slot = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((until, set)) = *slot {
            if sent <= set && retry_after.is_none() {
                return until.saturating_duration_since(now);
            }
        }
        let n = self.consecutive_429.fetch_add(1, Ordering::Relaxed).min(16);
        let pause = match retry_after {
            Some(d) => d.min(MAX_RATE_LIMIT_PAUSE * 10),
            None => jitter(base.saturating_mul(1 << n).min(MAX_RATE_LIMIT_PAUSE)),
        };
        let until = now + pause;
        if slot.is_none_or(|(current, _)| current < until) {
            *slot = Some((until, now));
        }
        pause
    }

    /// A request got through: the 429 streak is over.
    pub fn succeeded(&self) {
        self.consecutive_429.store(0, Ordering::Relaxed);
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests of the class got a final answer so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_caller() {
        let gate = std::sync::Arc::new(Gate::new(1000.0));
        gate.rate_limited(Some(Duration::from_secs(5)), Duration::from_secs(1), Instant::now());
        let other = gate.clone();
        let waited = tokio::spawn(async move { other.ready().await }).await.unwrap();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_without_retry_after_grows_and_caps_at_a_minute() {
        let gate = Gate::new(1000.0);
        // Each request sent after the pause before it began.
        let mut pauses = Vec::new();
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(1)).await;
            pauses.push(gate.rate_limited(None, Duration::from_secs(2), Instant::now()));
        }
        assert!(
            pauses[0] >= Duration::from_secs(1) && pauses[0] <= Duration::from_secs(2),
            "{pauses:?}"
        );
        assert!(pauses[3] >= Duration::from_secs(8), "{pauses:?}");
        assert!(pauses.iter().all(|p| *p <= MAX_RATE_LIMIT_PAUSE));
        gate.succeeded();
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(gate.rate_limited(None, Duration::from_secs(2), Instant::now()) <= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_when_a_pause_began_do_not_lengthen_it() {
        let gate = Gate::new(1000.0);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        let first = gate.rate_limited(None, Duration::from_secs(2), sent);
        let same_episode: Vec<Duration> = (0..3)
            .map(|_| gate.rate_limited(None, Duration::from_secs(2), sent))
            .collect();
        assert!(
            same_episode.iter().all(|p| *p <= first),
            "{first:?} then {same_episode:?}"
        );
        tokio::time::advance(first).await;
        let later = gate.rate_limited(None, Duration::from_secs(2), Instant::now());
        assert!(
            later >= Duration::from_secs(2),
            "a new episode backs off further: {later:?}"
        );
    }

    /// The limiter runs on the real clock: eleven permits at 100/s span at least 100 ms (a bound
    /// the limiter guarantees, not a speed).
    #[tokio::test]
    async fn requests_are_spaced_without_a_burst() {
        let gate = Gate::new(100.0);
        let start = std::time::Instant::now();
        for _ in 0..11 {
            gate.ready().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(99), "{:?}", start.elapsed());
    }

    /// A fractional rate spaces permits by its period: two permits at 4/s are 250 ms apart.
    #[tokio::test]
    async fn fractional_rates_are_kept() {
        let gate = Gate::new(4.0);
        gate.ready().await;
        let start = std::time::Instant::now();
        gate.ready().await;
        assert!(start.elapsed() >= Duration::from_millis(240), "{:?}", start.elapsed());
        let slow = Gate::new(0.3);
        slow.ready().await;
        let limiter = slow.limiter.borrow().clone().unwrap();
        assert!(limiter.check().is_err(), "0.3/s allows no second request at once");
    }

    /// A closed gate (the replica owns nothing) lets no request through until a rate opens it; a
    /// caller waiting on a slow rate goes on at the new, faster one.
    #[tokio::test(start_paused = true)]
    async fn a_new_rate_applies_to_callers_already_waiting() {
        let gate = std::sync::Arc::new(Gate::new(1.0));
        gate.ready().await;
        assert!(gate.set_rate(0.0) && !gate.set_rate(0.0));
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.ready().await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "a closed gate lets nothing through");
        gate.set_rate(1000.0);
        let waited = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(waited.is_ok(), "the new rate lets the waiting caller through");
    }
}
