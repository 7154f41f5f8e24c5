//! The stop for misconfiguration: when nearly all recent input is invalid, the worker stops instead
//! of dead-lettering everything (`intake.dlq_stop_ratio` of the last `intake.dlq_window` events).

use std::collections::VecDeque;

use crate::config::IntakeConfig;

#[derive(Default)]
pub struct InvalidShare {
    /// The last `dlq_window` events, whether each was invalid, and how many were.
    recent: VecDeque<bool>,
    bad: usize,
}

impl InvalidShare {
    /// Counts one event; an error when the share of invalid ones reached the limit.
    pub fn note(&mut self, invalid: bool, cfg: &IntakeConfig) -> anyhow::Result<()> {
        if cfg.dlq_stop_ratio <= 0.0 || cfg.dlq_window == 0 {
            return Ok(());
        }
        self.recent.push_back(invalid);
        self.bad += usize::from(invalid);
        if self.recent.len() > cfg.dlq_window && self.recent.pop_front() == Some(true) {
            self.bad -= 1;
        }
        let bad = self.bad;
        if self.recent.len() == cfg.dlq_window && bad as f64 >= cfg.dlq_stop_ratio * cfg.dlq_window as f64 {
            anyhow::bail!(
                "{bad} of the last {} events were invalid (intake.dlq_stop_ratio = {}): stopping instead of dead-lettering everything; check the producers and the topic",
                cfg.dlq_window,
                cfg.dlq_stop_ratio
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_only_when_the_window_is_nearly_all_invalid() {
        let cfg = IntakeConfig {
            dlq_window: 10,
            dlq_stop_ratio: 0.8,
            ..Default::default()
        };
        let mut share = InvalidShare::default();
        for i in 0..100 {
            assert!(share.note(i % 3 == 0, &cfg).is_ok(), "a third invalid never stops");
        }
        let stopped = (0..10).map(|_| share.note(true, &cfg)).position(|r| r.is_err());
        assert!(stopped.is_some_and(|n| n < 10), "eight of ten invalid stops");
    }
}
