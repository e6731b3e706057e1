//! The server's clock: the wall clock, which the test lab may move forward or freeze.
//!
//! Every protocol rule that depends on time (token `iat`/`exp`, code and session expiry,
//! refresh lifetimes, throttling windows, key purge) reads [`Clock::now`] from the one clock
//! its server holds (`AppState::clock`, `Store::clock`), never the wall clock directly, so
//! that a test can sign in, advance an hour and watch an access token expire. The setting
//! lives in the database (`test_clock`) so that every replica on it keeps the same time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch on the wall clock. Only for what is not protocol time:
/// replica heartbeats, log lines, and the clock itself.
pub fn real_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// How the test lab has set the clock (stored in `test_clock`, shared by replicas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSetting {
    /// Seconds added to the wall clock.
    pub offset_seconds: i64,
    /// When set, "now" stays at this instant until unfrozen.
    pub frozen_at: Option<i64>,
}

impl ClockSetting {
    /// "Now" under this setting, given the wall clock's `real` now.
    pub fn now_at(&self, real: i64) -> i64 {
        self.frozen_at.unwrap_or_else(|| real.saturating_add(self.offset_seconds))
    }

    /// Whether the clock is the wall clock.
    pub fn is_real(&self) -> bool {
        *self == Self::default()
    }
}

/// The furthest the test lab may move the clock either way: ten years.
pub const MAX_OFFSET: i64 = 10 * 365 * 86_400;

/// A change to the clock, as `POST /admin/api/clock`, the admin page and `lanyard clock`
/// ask for it. Fields combine in this order: `reset`, `offset_seconds`, `advance_seconds`,
/// `freeze`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    /// Back to the wall clock (alone).
    #[serde(default)]
    pub reset: bool,
    /// Sets the offset from the wall clock.
    pub offset_seconds: Option<i64>,
    /// Moves the clock forward (a frozen clock too).
    pub advance_seconds: Option<i64>,
    /// Stops the clock at its current "now" (`true`), or lets it run on from there (`false`).
    pub freeze: Option<bool>,
}

impl ClockChange {
    /// The setting after this change, given the current one and the wall clock's `real`
    /// now; or why the change makes no sense.
    pub fn apply_to(&self, current: ClockSetting, real: i64) -> Result<ClockSetting, String> {
        if self.reset {
            if self.offset_seconds.is_some() || self.advance_seconds.is_some() || self.freeze.is_some() {
                return Err("reset goes alone: it puts the clock back to the wall clock".into());
            }
            return Ok(ClockSetting::default());
        }
        if self.offset_seconds.is_none() && self.advance_seconds.is_none() && self.freeze.is_none() {
            return Err("say what to change: offset_seconds, advance_seconds, freeze or reset".into());
        }
        let mut next = current;
        if let Some(offset) = self.offset_seconds {
            next.offset_seconds = offset;
            if next.frozen_at.is_some() {
                next.frozen_at = Some(real.saturating_add(offset));
            }
        }
        if let Some(advance) = self.advance_seconds {
            if advance <= 0 {
                return Err(format!("advance_seconds must be positive (got {advance}); set offset_seconds to go back"));
            }
            next.offset_seconds = next.offset_seconds.saturating_add(advance);
            next.frozen_at = next.frozen_at.map(|at| at.saturating_add(advance));
        }
        match self.freeze {
            Some(true) if next.frozen_at.is_none() => next.frozen_at = Some(next.now_at(real)),
            // Unfrozen, time runs on from the instant it stood at.
            Some(false) => {
                if let Some(at) = next.frozen_at.take() {
                    next.offset_seconds = at.saturating_sub(real);
                }
            }
            _ => {}
        }
        let moved = next.now_at(real).saturating_sub(real);
        if next.offset_seconds.abs() > MAX_OFFSET || moved.abs() > MAX_OFFSET {
            return Err(format!("the clock may be moved at most {MAX_OFFSET} seconds (ten years) from the wall clock"));
        }
        Ok(next)
    }
}

/// What the clock endpoints answer: the server's "now" beside the real time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClockView {
    /// The server's now (seconds since the epoch), which every token and expiry uses.
    pub now: i64,
    /// The same, RFC 3339.
    pub now_utc: String,
    /// The wall clock's now.
    pub real_now: i64,
    pub real_now_utc: String,
    pub offset_seconds: i64,
    pub frozen: bool,
    pub frozen_at: Option<i64>,
}

impl ClockView {
    /// The view of `setting` at the wall clock's `real` now.
    pub fn of(setting: ClockSetting, real: i64) -> Self {
        let now = setting.now_at(real);
        Self {
            now,
            now_utc: rfc3339(now),
            real_now: real,
            real_now_utc: rfc3339(real),
            offset_seconds: setting.offset_seconds,
            frozen: setting.frozen_at.is_some(),
            frozen_at: setting.frozen_at,
        }
    }
}

/// Seconds from `90`, `90s`, `15m`, `1h` or `2d` (negative with a leading `-`).
pub fn parse_seconds(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(raw.len()));
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?}: use s, m, h or d (e.g. 90s, 15m, 1h, 2d)")),
    };
    let number: i64 =
        number.trim().parse().map_err(|_| format!("{raw:?} is not a duration such as 90s, 15m, 1h or 2d"))?;
    number.checked_mul(factor).ok_or_else(|| format!("{raw:?} is too long"))
}

impl ClockView {
    /// How "now" stands to the wall clock, in words: "the wall clock", "wall clock +3600 s",
    /// "frozen, +30 s from the wall clock".
    pub fn how(&self) -> String {
        match (self.frozen, self.offset_seconds) {
            (true, _) => format!("frozen, {:+} s from the wall clock", self.now - self.real_now),
            (false, 0) => "the wall clock".to_owned(),
            (false, offset) => format!("wall clock {offset:+} s"),
        }
    }
}

/// `at` as an RFC 3339 UTC timestamp (the number itself if out of range).
pub fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}

/// Marks "not frozen" in the atomic (no real instant is `i64::MIN`).
const NOT_FROZEN: i64 = i64::MIN;

/// The clock one server reads: cheap to clone (shared), cheap to read (two atomics).
#[derive(Debug, Clone)]
pub struct Clock(Arc<ClockState>);

#[derive(Debug)]
struct ClockState {
    offset: AtomicI64,
    frozen_at: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Self(Arc::new(ClockState { offset: AtomicI64::new(0), frozen_at: AtomicI64::new(NOT_FROZEN) }))
    }
}

impl Clock {
    /// Seconds since the Unix epoch, as this server's protocol sees it.
    pub fn now(&self) -> i64 {
        self.setting().now_at(real_now())
    }

    /// The setting in force.
    pub fn setting(&self) -> ClockSetting {
        let frozen = self.0.frozen_at.load(Ordering::Acquire);
        ClockSetting {
            offset_seconds: self.0.offset.load(Ordering::Acquire),
            frozen_at: (frozen != NOT_FROZEN).then_some(frozen),
        }
    }

    /// Applies a setting read from the database (or just written).
    pub fn apply(&self, setting: ClockSetting) {
        self.0.offset.store(setting.offset_seconds, Ordering::Release);
        self.0.frozen_at.store(setting.frozen_at.unwrap_or(NOT_FROZEN), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_freeze_move_now() {
        let clock = Clock::default();
        let real = real_now();
        assert!((clock.now() - real).abs() <= 1);
        clock.apply(ClockSetting { offset_seconds: 3600, frozen_at: None });
        assert!((clock.now() - real - 3600).abs() <= 1);
        clock.apply(ClockSetting { offset_seconds: 3600, frozen_at: Some(42) });
        assert_eq!(clock.now(), 42);
        assert_eq!(clock.setting().frozen_at, Some(42));
        clock.apply(ClockSetting::default());
        assert!(clock.setting().is_real());
    }

    #[test]
    fn changes_combine_and_are_bounded() {
        let real = 1_000_000;
        let change = |json: &str| serde_json::from_str::<ClockChange>(json).unwrap();
        let start = ClockSetting::default();
        let advanced = change(r#"{"advance_seconds": 3600}"#).apply_to(start, real).unwrap();
        assert_eq!(advanced, ClockSetting { offset_seconds: 3600, frozen_at: None });
        let frozen = change(r#"{"freeze": true}"#).apply_to(advanced, real).unwrap();
        assert_eq!(frozen.frozen_at, Some(real + 3600));
        // A frozen clock advances by steps; unfrozen, it runs on from where it stood.
        let stepped = change(r#"{"advance_seconds": 30}"#).apply_to(frozen, real + 500).unwrap();
        assert_eq!(stepped.now_at(real + 900), real + 3630);
        let running = change(r#"{"freeze": false}"#).apply_to(stepped, real + 1000).unwrap();
        assert_eq!(running.now_at(real + 1000), real + 3630);
        assert_eq!(change(r#"{"reset": true}"#).apply_to(running, real).unwrap(), ClockSetting::default());
        assert!(change("{}").apply_to(start, real).is_err());
        assert!(change(r#"{"reset": true, "advance_seconds": 1}"#).apply_to(start, real).is_err());
        assert!(change(r#"{"advance_seconds": -5}"#).apply_to(start, real).is_err());
        assert!(change(r#"{"offset_seconds": 400000000}"#).apply_to(start, real).is_err());
        assert!(serde_json::from_str::<ClockChange>(r#"{"offset": 5}"#).is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_seconds("90"), Ok(90));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("15m"), Ok(900));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("-2d"), Ok(-172_800));
        assert!(parse_seconds("1w").is_err());
        assert!(parse_seconds("h").is_err());
        assert!(parse_seconds("").is_err());
    }
}
