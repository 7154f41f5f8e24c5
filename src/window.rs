//! When to check that a delete happened: LangSmith deletes in a weekly batch job (design §5).
//! `verify_after` is the end of the first deletion window that ends after the delete was accepted,
//! plus a grace. A delete accepted during a window may miss that window's job; the verifier then
//! finds its traces still there and re-requests them for the next window.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveTime, TimeDelta, Utc, Weekday};
use serde::Deserialize;

use crate::duration::duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// LangSmith cloud: a weekly window, by default Saturday 00:00 to Monday 00:00 UTC, grace 6 h.
    Weekly {
        start_day: String,
        start_time: String,
        end_day: String,
        end_time: String,
        /// Fixed offset from UTC, e.g. `+02:00` (zones with daylight saving are not modelled).
        #[serde(default = "utc")]
        utc_offset: String,
        #[serde(deserialize_with = "duration")]
        grace: Duration,
    },
    /// Self-hosted installs and tests: check a fixed delay after acceptance.
    Fixed {
        #[serde(deserialize_with = "duration")]
        delay: Duration,
    },
}

fn utc() -> String {
    "+00:00".into()
}

impl Default for Window {
    fn default() -> Self {
        Window::Weekly {
            start_day: "saturday".into(),
            start_time: "00:00".into(),
            end_day: "monday".into(),
            end_time: "00:00".into(),
            utc_offset: utc(),
            grace: Duration::from_secs(6 * 3600),
        }
    }
}

struct Weekly {
    start_day: Weekday,
    start: NaiveTime,
    length: TimeDelta,
    offset: FixedOffset,
    grace: TimeDelta,
}

fn minute_of_week(day: Weekday, t: NaiveTime) -> i64 {
    use chrono::Timelike;
    day.num_days_from_monday() as i64 * 1440 + t.hour() as i64 * 60 + t.minute() as i64
}

impl Window {
    fn weekly(&self) -> Result<Option<Weekly>, String> {
        let Window::Weekly {
            start_day,
            start_time,
            end_day,
            end_time,
            utc_offset,
            grace,
        } = self
        else {
            return Ok(None);
        };
        let day = |d: &str| d.parse::<Weekday>().map_err(|_| format!("bad day {d:?}"));
        let time = |t: &str| NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| format!("bad time {t:?} (HH:MM)"));
        let (sd, st, ed, et) = (day(start_day)?, time(start_time)?, day(end_day)?, time(end_time)?);
        let offset = format!("2000-01-01T00:00:00{utc_offset}")
            .parse::<DateTime<FixedOffset>>()
            .map_err(|_| format!("bad utc_offset {utc_offset:?} (+HH:MM)"))?
            .timezone();
        let mut minutes = (minute_of_week(ed, et) - minute_of_week(sd, st)).rem_euclid(7 * 1440);
        if minutes == 0 {
            minutes = 7 * 1440;
        }
        let grace = TimeDelta::from_std(*grace).map_err(|_| "grace is too long".to_string())?;
        Ok(Some(Weekly {
            start_day: sd,
            start: st,
            length: TimeDelta::minutes(minutes),
            offset,
            grace,
        }))
    }

    pub fn validate(&self) -> Result<(), String> {
        self.weekly().map(|_| ())
    }

    /// When a delete accepted at `accepted` can first be checked.
    pub fn verify_after(&self, accepted: DateTime<Utc>) -> DateTime<Utc> {
        match self.weekly() {
            Ok(Some(w)) => {
                let local = accepted.with_timezone(&w.offset);
                let ahead = (7 + w.start_day.num_days_from_monday() - local.weekday().num_days_from_monday()) % 7;
                let day = local.date_naive() + Days::new(ahead.into());
                let mut start = day
                    .and_time(w.start)
                    .and_local_timezone(w.offset)
                    .single()
                    .unwrap_or(local);
                if start <= local {
                    start = start + Days::new(7);
                }
                // A window in progress ends after acceptance: that is the one.
                let previous = start - Days::new(7);
                if previous + w.length > local {
                    start = previous;
                }
                (start + w.length + w.grace).with_timezone(&Utc)
            }
            _ => match self {
                Window::Fixed { delay } => accepted + TimeDelta::from_std(*delay).unwrap_or(TimeDelta::MAX),
                // An invalid weekly window is rejected by `validate` at start-up.
                Window::Weekly { .. } => accepted + TimeDelta::days(7),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn default_window_checks_monday_six_am_after_the_next_weekend() {
        let w = Window::default();
        // 2026-11-23 is a Monday; the next window runs Sat 28th 00:00 to Mon 30th 00:00.
        assert_eq!(w.verify_after(at(2026, 11, 23, 12)), at(2026, 11, 30, 6));
        // Accepted during a window: the end of that window; at its very end: the next one.
        assert_eq!(w.verify_after(at(2026, 11, 29, 12)), at(2026, 11, 30, 6));
        assert_eq!(w.verify_after(at(2026, 11, 30, 0)), at(2026, 12, 7, 6));
        let fixed = Window::Fixed {
            delay: Duration::from_secs(5),
        };
        assert_eq!(
            fixed.verify_after(at(2026, 1, 1, 0)),
            at(2026, 1, 1, 0) + TimeDelta::seconds(5)
        );
    }

    #[test]
    fn offsets_and_bad_values() {
        let weekly = |start_day: &str, utc_offset: &str| Window::Weekly {
            start_day: start_day.into(),
            start_time: "22:00".into(),
            end_day: "monday".into(),
            end_time: "02:00".into(),
            utc_offset: utc_offset.into(),
            grace: Duration::ZERO,
        };
        // Sunday 22:00 +02:00 is 20:00 UTC; the window lasts 4 hours.
        assert_eq!(
            weekly("sunday", "+02:00").verify_after(at(2026, 11, 23, 12)),
            at(2026, 11, 30, 0)
        );
        assert!(weekly("someday", "+02:00").validate().is_err());
        assert!(weekly("sunday", "CET").validate().is_err());
    }

    proptest! {
        #[test]
        fn never_before_acceptance_monotonic_and_after_a_window_end(a in 0i64..4_000_000_000, d in 0i64..10_000_000) {
            let w = Window::default();
            let (t1, t2) = (Utc.timestamp_opt(a, 0).unwrap(), Utc.timestamp_opt(a + d, 0).unwrap());
            let (v1, v2) = (w.verify_after(t1), w.verify_after(t2));
            prop_assert!(v1 > t1);
            prop_assert!(v1 <= v2);
            // Grace after a Monday 00:00 UTC window end.
            let end = v1 - TimeDelta::hours(6);
            prop_assert_eq!(end.weekday(), Weekday::Mon);
            prop_assert_eq!(end.time(), NaiveTime::MIN);
            prop_assert!(end > t1, "the window ends after acceptance");
            prop_assert!(end - TimeDelta::days(7) <= t1, "and it is the first such window");
        }
    }
}
