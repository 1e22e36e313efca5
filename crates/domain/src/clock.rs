//! The source of "now". Every rule about dates reads time through [`Clock`]
//! so that tests can pin it.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};

/// Where the current instant comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Today's calendar date in UTC.
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is told, for tests and replays.
#[derive(Debug, Clone)]
pub struct FixedClock {
    now: Arc<RwLock<DateTime<Utc>>>,
}

impl FixedClock {
    /// A clock frozen at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(RwLock::new(now)),
        }
    }

    /// Moves the clock to `now` (every clone sees the change).
    pub fn set(&self, now: DateTime<Utc>) {
        let mut guard = self.now.write().unwrap_or_else(|e| e.into_inner());
        *guard = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut guard = self.now.write().unwrap_or_else(|e| e.into_inner());
        *guard += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_moves_only_when_told_and_clones_share_it() {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 30, 0)
            .single()
            .unwrap();
        let clock = FixedClock::new(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(chrono::Duration::days(1));
        assert_eq!(
            clock.today(),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
    }
}
