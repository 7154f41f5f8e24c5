//! Retry spacing, shared by every caller that waits before trying again (LangSmith calls, Kafka
//! publishing): a leaf module, so neither depends on the other.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

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
    fn backoff_is_capped_and_jittered() {
        let (base, max) = (Duration::from_millis(200), Duration::from_secs(30));
        for attempt in 0..40 {
            let d = backoff(attempt, base, max);
            assert!(d <= max && d >= base / 2, "{attempt}: {d:?}");
        }
        assert!(backoff(10, base, max) >= max / 2);
    }
}
