//! Times in output events, written as chrono writes them (RFC 3339 in UTC with `Z`, and as many
//! fraction digits as the time needs), but formatted into a string first. chrono's own
//! `Serialize` hands serde_json a `Display`, which it writes through its escaping writer a few
//! characters at a time: in a profile of the intake under a backlog, that was about a third of
//! encoding each `deletion-requested` event (three times in it).

use chrono::{DateTime, SecondsFormat, Utc};

/// `#[serde(serialize_with)]` for a time of an output event.
pub fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};

    use super::*;

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let whole = Utc.with_ymd_and_hms(2026, 12, 2, 12, 13, 25).unwrap();
        for nanos in [0, 835_000_000, 835_658_000, 835_658_726, 1_000, 1] {
            let t = whole.with_nanosecond(nanos).unwrap();
            let chrono = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::to_string(&Ours(t)).unwrap(), chrono, "{nanos} ns");
        }
        // A leap second (chrono's nanoseconds past 999,999,999).
        let leap = Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap();
        let leap = leap.with_nanosecond(1_500_000_000).unwrap();
        assert_eq!(
            serde_json::to_string(&Ours(leap)).unwrap(),
            serde_json::to_string(&leap).unwrap()
        );
    }
}
