//! When the simulated deletion job runs: never on its own (manual), every N seconds, or weekly
//! like LangSmith's weekend batch job.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Only when `POST /_sim/window/run` asks.
    Manual,
    Every {
        seconds: f64,
    },
    /// Once a week at `day` `time` (UTC), e.g. `sunday` `03:00`.
    Weekly {
        day: String,
        time: String,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Weekly {
            day: "sunday".into(),
            time: "00:00".into(),
        }
    }
}

impl Schedule {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Schedule::Manual => Ok(()),
            Schedule::Every { seconds } if *seconds > 0.0 && seconds.is_finite() => Ok(()),
            Schedule::Every { .. } => Err("seconds must be > 0".into()),
            Schedule::Weekly { day, time } => {
                day.parse::<Weekday>().map_err(|_| format!("bad day {day:?}"))?;
                NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| format!("bad time {time:?} (HH:MM)"))?;
                Ok(())
            }
        }
    }

    /// How long from `now` until the job runs next; `None` when it runs only on demand.
    pub fn next_in(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Schedule::Manual => None,
            Schedule::Every { seconds } => Some(Duration::from_secs_f64(*seconds)),
            Schedule::Weekly { day, time } => {
                let day: Weekday = day.parse().ok()?;
                let time = NaiveTime::parse_from_str(time, "%H:%M").ok()?;
                let ahead = (7 + day.num_days_from_monday() - now.weekday().num_days_from_monday()) % 7;
                let mut next = (now.date_naive() + Days::new(ahead.into())).and_time(time).and_utc();
                if next <= now {
                    next = next + Days::new(7);
                }
                (next - now).to_std().ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weekly_runs_at_the_next_matching_day_and_time() {
        let s = Schedule::Weekly {
            day: "sunday".into(),
            time: "03:00".into(),
        };
        // 2026-11-23 is a Monday.
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(s.next_in(monday), Some(Duration::from_secs(6 * 86400 - 9 * 3600)));
        let sunday_at = Utc.with_ymd_and_hms(2026, 11, 29, 3, 0, 0).unwrap();
        assert_eq!(s.next_in(sunday_at), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(Schedule::Manual.next_in(monday), None);
        assert!(Schedule::Weekly {
            day: "funday".into(),
            time: "03:00".into()
        }
        .validate()
        .is_err());
        assert!(Schedule::Every { seconds: 0.0 }.validate().is_err());
    }
}
