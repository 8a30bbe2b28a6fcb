//! Where "now" comes from.
//!
//! The verifier and the stores never read the wall clock directly: they ask a [`Clock`]. The
//! default is [`SystemClock`]; tests (this crate's and yours) use [`ManualClock`], which only
//! moves when told to, so no test has to sleep.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current time in nanoseconds since the Unix epoch: what the verifier's window check
    /// reads on every request. Override it when the clock can answer without building an
    /// [`OffsetDateTime`] (the system clock does: that conversion costs as much as reading it).
    fn unix_nanos(&self) -> i128 {
        self.now().unix_timestamp_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }

    fn unix_nanos(&self) -> i128 {
        (**self).unix_nanos()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// On Linux, reads the coarse real-time clock (`CLOCK_REALTIME_COARSE`): the time of the
    /// last kernel tick, a few milliseconds behind at most, for a fifth of the cost of the
    /// precise clock. The window it is checked against is measured in seconds.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn unix_nanos(&self) -> i128 {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn unix_nanos(&self) -> i128 {
        self.now().unix_timestamp_nanos()
    }
}

/// A clock that stands still until it is set or advanced.
///
/// Share it through an [`Arc`]: hand one clone to the verifier or store, keep the other to move
/// time forward in the test.
///
/// ```
/// use std::sync::Arc;
/// use hookverify::{Clock, ManualClock};
/// use time::Duration;
///
/// let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
/// clock.advance(Duration::seconds(301));
/// assert_eq!(clock.now().unix_timestamp(), 1_764_000_301);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock that reads `now` until it is changed.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// A clock at the given Unix time in seconds, or `None` if `time` cannot represent it.
    pub fn from_unix(seconds: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(Self::new)
    }

    /// Sets the current time.
    pub fn set(&self, now: OffsetDateTime) {
        *self.lock() = now;
    }

    /// Moves the clock by `by` (backwards when negative), saturating at the ends of the range.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = now.saturating_add(by);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetDateTime> {
        // The guarded value is a plain timestamp: a panic elsewhere cannot leave it half-written.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.lock()
    }
}

/// Unix milliseconds from a clock's [`unix_nanos`](Clock::unix_nanos), rounded down (also
/// before 1970) and saturating.
pub(crate) fn unix_ms(nanos: i128) -> i64 {
    let millis = nanos.div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_rounds_down_and_saturates() {
        assert_eq!(unix_ms(1_764_000_000_123_456_789), 1_764_000_000_123);
        assert_eq!(unix_ms(-1_500_000), -2);
        assert_eq!(unix_ms(0), 0);
        assert_eq!(unix_ms(i128::MAX), i64::MAX);
        assert_eq!(unix_ms(i128::MIN), i64::MIN);
    }
}
