//! Time as the registry sees it: a [`Timestamp`] in milliseconds that the caller supplies (the crate reads no
//! clock), and durations in Consul's notation, which is Go's `time.ParseDuration` (`10s`, `500ms`, `1m30s`,
//! `1.5h`). Durations are `std::time::Duration`; records store them as Consul strings.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shown};

/// A point in time in milliseconds since an epoch the server chooses. Records written to the store carry it,
/// so every member should use the same epoch: Unix milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This instant plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(d)))
    }

    /// The time from `earlier` to this instant, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// `d` in whole milliseconds, saturating at `u64::MAX`.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Consul duration: one or more `<number><unit>` terms (`1h`, `1m30s`, `1.5s`, `250ms`), units `ns`,
/// `us`/`µs`, `ms`, `s`, `m`, `h`, or the bare `0`. Negative durations, a missing unit and overflow are errors.
pub fn parse_duration(input: &str) -> Result<Duration> {
    let bad = |why| Error::BadDuration { input: shown(input), why };
    let mut rest = input.strip_prefix('+').unwrap_or(input);
    if rest.starts_with('-') {
        return Err(bad("negative durations are not allowed"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (whole, fraction, after) = number(rest).ok_or_else(|| bad("expected a number"))?;
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(bad("missing unit (ns, us, ms, s, m or h)"));
        }
        let scale = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s).ok_or_else(|| bad("unknown unit"))?;
        let mut term = whole.checked_mul(scale).ok_or_else(|| bad("too large"))?;
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            term += u128::from(digit - b'0') * place;
        }
        nanos = nanos.checked_add(term).ok_or_else(|| bad("too large"))?;
        rest = after;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad("too large"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Splits a leading `<digits>[.<digits>]` off `s`: the whole part, the fraction's digits and the rest.
fn number(s: &str) -> Option<(u128, &str, &str)> {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_len);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())),
        None => ("", rest),
    };
    if int.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole = if int.is_empty() { 0 } else { int.parse().ok()? };
    Some((whole, fraction, rest))
}

/// Formats `d` as Go's `time.Duration.String` does: `1h0m0s`, `1m30s`, `10s`, `1.5s`, `500ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (scale, unit) = match nanos {
            n if n < 1_000 => (1, "ns"),
            n if n < 1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{unit}", decimal(nanos, scale));
    }
    let total_secs = nanos / 1_000_000_000;
    let (h, m) = (total_secs / 3600, total_secs / 60 % 60);
    let secs = decimal(nanos % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// `value / scale` as a decimal without trailing zeros.
fn decimal(value: u128, scale: u128) -> String {
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Serde for `Duration` fields of stored records, as Consul strings.
pub(crate) mod consul_string {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(|e| D::Error::custom(e.message()))
    }
}

/// Serde for `Option<Duration>` fields of stored records, as Consul strings.
pub(crate) mod consul_string_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::parse_duration(&text).map(Some).map_err(|e| D::Error::custom(e.message())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn consul_durations_parse() {
        let cases: [(&str, Duration); 12] = [
            ("10s", MS(10_000)),
            ("500ms", MS(500)),
            ("1m30s", MS(90_000)),
            ("1h", MS(3_600_000)),
            ("1.5s", MS(1_500)),
            ("1.5h", MS(5_400_000)),
            (".5s", MS(500)),
            ("0", Duration::ZERO),
            ("+2s", MS(2_000)),
            ("1h1m1s1ms", MS(3_661_001)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        let cases = [
            ("", "empty"),
            ("10", "missing unit"),
            ("5x", "unknown unit"),
            ("-1s", "negative"),
            ("s", "expected a number"),
            ("1s.", "expected a number"),
            ("99999999999999999999999h", "too large"),
        ];
        for (text, why) in cases {
            let msg = parse_duration(text).unwrap_err().message();
            assert!(msg.contains(why), "{text:?}: {msg}");
        }
    }

    #[test]
    fn durations_format_as_go_does_and_round_trip() {
        let cases = [
            (MS(0), "0s"),
            (MS(500), "500ms"),
            (MS(1_500), "1.5s"),
            (MS(10_000), "10s"),
            (MS(90_000), "1m30s"),
            (MS(3_600_000), "1h0m0s"),
            (MS(3_661_250), "1h1m1.25s"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_nanos(42), "42ns"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want);
            assert_eq!(parse_duration(want).unwrap(), d, "{want} parses back");
        }
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(Timestamp(5).plus(MS(10)), Timestamp(15));
        assert_eq!(Timestamp(u64::MAX).plus(MS(10)), Timestamp(u64::MAX));
        assert_eq!(Timestamp(5).since(Timestamp(9)), Duration::ZERO);
        assert_eq!(Timestamp(9).since(Timestamp(5)), MS(4));
    }
}
