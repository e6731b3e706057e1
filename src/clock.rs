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

/// The wall clock (being replaced by [`Clock::now`] at every protocol call site).
pub fn now() -> i64 {
    real_now()
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
}
