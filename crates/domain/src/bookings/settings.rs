//! A business's online-booking settings: whether customers book online,
//! whether their requests need approval, how far ahead and how late they may
//! book, and until when they may cancel or reschedule.

use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::error::BookingError;
use crate::contact_channels::OrgTimeZone;

/// Whether a customer's request holds its slot as confirmed straight away or
/// waits for staff approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// Confirmed on request.
    #[default]
    Automatic,
    /// Pending until staff approve or decline it.
    Manual,
}

impl Confirmation {
    /// Every mode.
    pub const ALL: [Confirmation; 2] = [Confirmation::Automatic, Confirmation::Manual];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmation::Automatic => "automatic",
            Confirmation::Manual => "manual",
        }
    }

    /// Reads a name written by [`Confirmation::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

/// Whether customers may cancel (or reschedule) a booking themselves, and up
/// to how many hours before its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangePolicy {
    /// Customers may do it at all.
    pub allowed: bool,
    /// Up to this many hours before the start (0: until the start).
    pub until_hours_before: u32,
}

impl Default for ChangePolicy {
    /// Allowed up to 24 hours before.
    fn default() -> Self {
        ChangePolicy {
            allowed: true,
            until_hours_before: 24,
        }
    }
}

impl ChangePolicy {
    /// The instant from which it is too late for a booking starting at
    /// `start`, or `None` when customers may not do it at all.
    pub fn deadline(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.allowed
            .then(|| start - TimeDelta::hours(i64::from(self.until_hours_before)))
    }
}

/// A business's online-booking settings. An organization that never saved
/// any has [`BookingSettings::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingSettings {
    /// Customers may book online (off by default: the business opts in).
    pub online_booking: bool,
    /// Whether requests are confirmed at once or wait for approval.
    pub confirmation: Confirmation,
    /// How many days ahead customers may book.
    pub horizon_days: u32,
    /// How many minutes ahead of its start a booking must be made.
    pub min_notice_minutes: u32,
    /// Whether and until when customers may cancel.
    pub cancellation: ChangePolicy,
    /// Whether and until when customers may reschedule.
    pub reschedule: ChangePolicy,
    /// How many pending requests one customer may hold at once.
    pub max_pending: u32,
    /// How many hours before its start the reminder goes out.
    pub reminder_hours_before: u32,
    /// The zone of the opening windows and of the calendar invitations.
    pub time_zone: OrgTimeZone,
}

impl Default for BookingSettings {
    /// Online booking off, automatic confirmation, 60 days ahead, 12 hours'
    /// notice, cancel and reschedule until 24 hours before, 2 pending
    /// requests, a reminder 24 hours before, in Europe/Paris.
    fn default() -> Self {
        BookingSettings {
            online_booking: false,
            confirmation: Confirmation::Automatic,
            horizon_days: 60,
            min_notice_minutes: 720,
            cancellation: ChangePolicy::default(),
            reschedule: ChangePolicy::default(),
            max_pending: 2,
            reminder_hours_before: 24,
            time_zone: OrgTimeZone::PARIS,
        }
    }
}

impl BookingSettings {
    /// The accepted `horizon_days`.
    pub const HORIZON_DAYS: RangeInclusive<u32> = 1..=365;
    /// The accepted `min_notice_minutes` (up to 30 days).
    pub const MIN_NOTICE_MINUTES: RangeInclusive<u32> = 0..=43_200;
    /// The accepted `until_hours_before` of both change policies (up to 30
    /// days).
    pub const UNTIL_HOURS_BEFORE: RangeInclusive<u32> = 0..=720;
    /// The accepted `max_pending`.
    pub const MAX_PENDING: RangeInclusive<u32> = 1..=20;
    /// The accepted `reminder_hours_before` (up to a week).
    pub const REMINDER_HOURS_BEFORE: RangeInclusive<u32> = 1..=168;

    /// Checks every number against its range; the first one out of range is
    /// named in [`BookingError::InvalidSetting`].
    pub fn validate(&self) -> Result<(), BookingError> {
        let checks: [(&'static str, u32, RangeInclusive<u32>); 6] = [
            ("horizon_days", self.horizon_days, Self::HORIZON_DAYS),
            (
                "min_notice_minutes",
                self.min_notice_minutes,
                Self::MIN_NOTICE_MINUTES,
            ),
            (
                "cancellation.until_hours_before",
                self.cancellation.until_hours_before,
                Self::UNTIL_HOURS_BEFORE,
            ),
            (
                "reschedule.until_hours_before",
                self.reschedule.until_hours_before,
                Self::UNTIL_HOURS_BEFORE,
            ),
            ("max_pending", self.max_pending, Self::MAX_PENDING),
            (
                "reminder_hours_before",
                self.reminder_hours_before,
                Self::REMINDER_HOURS_BEFORE,
            ),
        ];
        for (field, value, range) in checks {
            if !range.contains(&value) {
                return Err(BookingError::InvalidSetting {
                    field,
                    min: *range.start(),
                    max: *range.end(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn defaults_follow_the_issue() {
        let s = BookingSettings::default();
        assert!(!s.online_booking);
        assert_eq!(s.confirmation, Confirmation::Automatic);
        assert_eq!(s.horizon_days, 60);
        assert_eq!(s.min_notice_minutes, 720);
        assert_eq!(
            s.cancellation,
            ChangePolicy {
                allowed: true,
                until_hours_before: 24
            }
        );
        assert_eq!(s.reschedule, s.cancellation);
        assert_eq!(s.max_pending, 2);
        assert_eq!(s.reminder_hours_before, 24);
        assert_eq!(s.time_zone.name(), "Europe/Paris");
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn confirmation_names_round_trip() {
        for c in Confirmation::ALL {
            assert_eq!(Confirmation::parse(c.as_str()), Some(c));
        }
        assert_eq!(Confirmation::Manual.as_str(), "manual");
        assert_eq!(
            Confirmation::parse("automatic"),
            Some(Confirmation::Automatic)
        );
        assert_eq!(Confirmation::parse("Manual"), None);
    }

    #[test]
    fn each_setting_is_checked_at_both_ends() {
        fn field_of(change: impl FnOnce(&mut BookingSettings)) -> Option<&'static str> {
            let mut s = BookingSettings::default();
            change(&mut s);
            match s.validate() {
                Ok(()) => None,
                Err(BookingError::InvalidSetting { field, .. }) => Some(field),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(field_of(|s| s.horizon_days = 0), Some("horizon_days"));
        assert_eq!(field_of(|s| s.horizon_days = 1), None);
        assert_eq!(field_of(|s| s.horizon_days = 365), None);
        assert_eq!(field_of(|s| s.horizon_days = 366), Some("horizon_days"));
        assert_eq!(field_of(|s| s.min_notice_minutes = 0), None);
        assert_eq!(field_of(|s| s.min_notice_minutes = 43_200), None);
        assert_eq!(
            field_of(|s| s.min_notice_minutes = 43_201),
            Some("min_notice_minutes")
        );
        assert_eq!(field_of(|s| s.cancellation.until_hours_before = 0), None);
        assert_eq!(field_of(|s| s.cancellation.until_hours_before = 720), None);
        assert_eq!(
            field_of(|s| s.cancellation.until_hours_before = 721),
            Some("cancellation.until_hours_before")
        );
        assert_eq!(
            field_of(|s| s.reschedule.until_hours_before = 721),
            Some("reschedule.until_hours_before")
        );
        assert_eq!(field_of(|s| s.max_pending = 0), Some("max_pending"));
        assert_eq!(field_of(|s| s.max_pending = 20), None);
        assert_eq!(field_of(|s| s.max_pending = 21), Some("max_pending"));
        assert_eq!(
            field_of(|s| s.reminder_hours_before = 0),
            Some("reminder_hours_before")
        );
        assert_eq!(field_of(|s| s.reminder_hours_before = 168), None);
        assert_eq!(
            field_of(|s| s.reminder_hours_before = 169),
            Some("reminder_hours_before")
        );

        let s = BookingSettings {
            max_pending: 99,
            ..BookingSettings::default()
        };
        assert_eq!(
            s.validate(),
            Err(BookingError::InvalidSetting {
                field: "max_pending",
                min: 1,
                max: 20
            })
        );
    }

    #[test]
    fn a_policy_deadline_is_hours_before_the_start() {
        let start = Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap();
        let policy = ChangePolicy {
            allowed: true,
            until_hours_before: 48,
        };
        assert_eq!(
            policy.deadline(start),
            Some(Utc.with_ymd_and_hms(2026, 5, 2, 9, 0, 0).unwrap())
        );
        let closed = ChangePolicy {
            allowed: false,
            ..policy
        };
        assert_eq!(closed.deadline(start), None);
    }

    #[test]
    fn settings_round_trip_through_json() {
        let s = BookingSettings {
            confirmation: Confirmation::Manual,
            time_zone: OrgTimeZone::parse("America/New_York").unwrap(),
            ..BookingSettings::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["confirmation"], "manual");
        assert_eq!(json["time_zone"], "America/New_York");
        assert_eq!(json["cancellation"]["until_hours_before"], 24);
        let back: BookingSettings = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
