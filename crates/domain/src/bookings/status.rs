//! The life of a booking: its statuses, what staff may do with it, the
//! customer's three lists, and what the customer may still do under the
//! business's settings.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::error::BookingError;
use super::settings::{BookingSettings, ChangePolicy, Confirmation};
use super::slots::booking_window;

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Requested, waiting for staff approval; holds its slot meanwhile.
    Pending,
    /// Holds its slot.
    Confirmed,
    /// Staff turned the request down.
    Declined,
    /// Cancelled by the customer or staff.
    Cancelled,
    /// Took place.
    Completed,
    /// The customer did not come.
    NoShow,
}

impl BookingStatus {
    /// Every status.
    pub const ALL: [BookingStatus; 6] = [
        BookingStatus::Pending,
        BookingStatus::Confirmed,
        BookingStatus::Declined,
        BookingStatus::Cancelled,
        BookingStatus::Completed,
        BookingStatus::NoShow,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Pending => "pending",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Declined => "declined",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Completed => "completed",
            BookingStatus::NoShow => "no_show",
        }
    }

    /// Reads a name written by [`BookingStatus::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether the booking keeps its provider's time from others (pending or
    /// confirmed).
    pub fn holds_slot(self) -> bool {
        matches!(self, BookingStatus::Pending | BookingStatus::Confirmed)
    }
}

/// What staff may do with a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffAction {
    /// Accept a pending request.
    Approve,
    /// Turn a pending request down.
    Decline,
    /// Cancel a pending or confirmed booking.
    Cancel,
    /// Record that a confirmed booking took place.
    Complete,
    /// Record that the customer did not come.
    NoShow,
}

impl StaffAction {
    /// Every action.
    pub const ALL: [StaffAction; 5] = [
        StaffAction::Approve,
        StaffAction::Decline,
        StaffAction::Cancel,
        StaffAction::Complete,
        StaffAction::NoShow,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffAction::Approve => "approve",
            StaffAction::Decline => "decline",
            StaffAction::Cancel => "cancel",
            StaffAction::Complete => "complete",
            StaffAction::NoShow => "no_show",
        }
    }

    /// Reads a name written by [`StaffAction::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }

    /// The action as a past participle, for messages ("cannot be approved").
    fn done(self) -> &'static str {
        match self {
            StaffAction::Approve => "approved",
            StaffAction::Decline => "declined",
            StaffAction::Cancel => "cancelled",
            StaffAction::Complete => "completed",
            StaffAction::NoShow => "marked as no-show",
        }
    }
}

/// The status after a staff action, or BookingError::InvalidTransition.
/// Complete/NoShow only for Confirmed and only once the start has passed
/// (now >= start) else BookingError::NotStartedYet.
///
/// Approve and decline apply to pending requests; cancel to pending or
/// confirmed bookings, at any time.
pub fn staff_transition(
    status: BookingStatus,
    action: StaffAction,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<BookingStatus, BookingError> {
    use BookingStatus::*;
    let next = match (action, status) {
        (StaffAction::Approve, Pending) => Confirmed,
        (StaffAction::Decline, Pending) => Declined,
        (StaffAction::Cancel, Pending | Confirmed) => Cancelled,
        (StaffAction::Complete, Confirmed) => Completed,
        (StaffAction::NoShow, Confirmed) => NoShow,
        _ => {
            return Err(BookingError::InvalidTransition {
                status,
                action: action.done(),
            });
        }
    };
    if matches!(next, Completed | NoShow) && now < start {
        return Err(BookingError::NotStartedYet { start });
    }
    Ok(next)
}

/// The customer's three lists of bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Confirmed bookings not yet over.
    Upcoming,
    /// Everything that is over, declined or cancelled.
    History,
    /// Requests waiting for the business.
    Pending,
}

impl View {
    /// Every view.
    pub const ALL: [View; 3] = [View::Upcoming, View::History, View::Pending];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Upcoming => "upcoming",
            View::History => "history",
            View::Pending => "pending",
        }
    }

    /// Reads a name written by [`View::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == value)
    }
}

/// The list a booking belongs to at `now`: pending requests under
/// [`View::Pending`] whatever their time; confirmed bookings that have not
/// ended (end > now) under [`View::Upcoming`]; everything else (declined,
/// cancelled, completed, no-show, confirmed and over) under
/// [`View::History`].
pub fn view_of(status: BookingStatus, end: DateTime<Utc>, now: DateTime<Utc>) -> View {
    match status {
        BookingStatus::Pending => View::Pending,
        BookingStatus::Confirmed if end > now => View::Upcoming,
        _ => View::History,
    }
}

/// What the customer may do with a booking now, and until when (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actions {
    /// Cancellation is open until this instant; `None`: not (or no longer)
    /// possible.
    pub cancel_until: Option<DateTime<Utc>>,
    /// Rescheduling is open until this instant; `None`: not (or no longer)
    /// possible.
    pub reschedule_until: Option<DateTime<Utc>>,
}

/// The deadline of `policy` for a booking in `status` starting at `start`,
/// when it is still ahead.
fn open_until(
    policy: &ChangePolicy,
    status: BookingStatus,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !status.holds_slot() {
        return None;
    }
    policy.deadline(start).filter(|deadline| now < *deadline)
}

/// What the customer may do now: cancel while status holds the slot, policy
/// allowed and now < start - until_hours_before (cancel_until = that
/// instant); same for reschedule, which also needs online booking on (the
/// new start is a customer request, see [`check_customer_start`]).
pub fn customer_actions(
    settings: &BookingSettings,
    status: BookingStatus,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Actions {
    Actions {
        cancel_until: open_until(&settings.cancellation, status, start, now),
        reschedule_until: if settings.online_booking {
            open_until(&settings.reschedule, status, start, now)
        } else {
            None
        },
    }
}

/// Checks for a customer's request (new booking or new start of a
/// reschedule): online booking on (BookingError::OnlineBookingDisabled),
/// earliest <= start <= latest (BookingError::OutsideBookingWindow).
pub fn check_customer_start(
    settings: &BookingSettings,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    if !settings.online_booking {
        return Err(BookingError::OnlineBookingDisabled);
    }
    let (earliest, latest) = booking_window(settings, now);
    if start < earliest || start > latest {
        return Err(BookingError::OutsideBookingWindow { earliest, latest });
    }
    Ok(())
}

/// Whether the customer may cancel now: the booking holds its slot
/// ([`BookingError::InvalidTransition`]), the business lets customers cancel
/// ([`BookingError::CancellationNotAllowed`]) and the deadline is ahead
/// ([`BookingError::TooLateToCancel`]), checked in that order.
pub fn check_cancel(
    settings: &BookingSettings,
    status: BookingStatus,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    if !status.holds_slot() {
        return Err(BookingError::InvalidTransition {
            status,
            action: "cancelled",
        });
    }
    let Some(deadline) = settings.cancellation.deadline(start) else {
        return Err(BookingError::CancellationNotAllowed);
    };
    if now >= deadline {
        return Err(BookingError::TooLateToCancel { deadline });
    }
    Ok(())
}

/// Whether the customer may move the booking now: it holds its slot
/// ([`BookingError::InvalidTransition`]), the business lets customers
/// reschedule ([`BookingError::RescheduleNotAllowed`]) and the deadline of
/// the current start is ahead ([`BookingError::TooLateToReschedule`]). The
/// new start is checked apart, with [`check_customer_start`].
pub fn check_reschedule(
    settings: &BookingSettings,
    status: BookingStatus,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    if !status.holds_slot() {
        return Err(BookingError::InvalidTransition {
            status,
            action: "rescheduled",
        });
    }
    let Some(deadline) = settings.reschedule.deadline(start) else {
        return Err(BookingError::RescheduleNotAllowed);
    };
    if now >= deadline {
        return Err(BookingError::TooLateToReschedule { deadline });
    }
    Ok(())
}

/// Status of a new customer request: Pending when Manual, Confirmed when
/// Automatic.
pub fn initial_status(settings: &BookingSettings) -> BookingStatus {
    match settings.confirmation {
        Confirmation::Manual => BookingStatus::Pending,
        Confirmation::Automatic => BookingStatus::Confirmed,
    }
}

/// Whether a customer holding `pending` pending requests (as the store counts
/// them) may make another: refused with [`BookingError::TooManyPending`] when
/// the new request would be pending too and the limit is reached.
pub fn check_pending_limit(settings: &BookingSettings, pending: i64) -> Result<(), BookingError> {
    if initial_status(settings) == BookingStatus::Pending
        && pending >= i64::from(settings.max_pending)
    {
        return Err(BookingError::TooManyPending {
            max: settings.max_pending,
        });
    }
    Ok(())
}

/// When the reminder of a booking starting at `start` is due.
pub fn reminder_due_at(settings: &BookingSettings, start: DateTime<Utc>) -> DateTime<Utc> {
    start - TimeDelta::hours(i64::from(settings.reminder_hours_before))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn online() -> BookingSettings {
        BookingSettings {
            online_booking: true,
            ..BookingSettings::default()
        }
    }

    const START: fn() -> DateTime<Utc> = || utc(2026, 6, 10, 9, 0);

    #[test]
    fn names_round_trip() {
        for s in BookingStatus::ALL {
            assert_eq!(BookingStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(BookingStatus::NoShow.as_str(), "no_show");
        assert_eq!(BookingStatus::parse("noshow"), None);
        for a in StaffAction::ALL {
            assert_eq!(StaffAction::parse(a.as_str()), Some(a));
        }
        for v in View::ALL {
            assert_eq!(View::parse(v.as_str()), Some(v));
        }
        assert_eq!(View::parse("past"), None);
        assert_eq!(
            serde_json::to_value(BookingStatus::NoShow).unwrap(),
            "no_show"
        );
        let held: Vec<BookingStatus> = BookingStatus::ALL
            .into_iter()
            .filter(|s| s.holds_slot())
            .collect();
        assert_eq!(held, [BookingStatus::Pending, BookingStatus::Confirmed]);
    }

    #[test]
    fn staff_transitions() {
        use BookingStatus::*;
        use StaffAction::*;
        let start = START();
        let before = start - TimeDelta::minutes(1);
        let after = start + TimeDelta::minutes(1);
        let ok = |status, action, now| staff_transition(status, action, start, now);
        assert_eq!(ok(Pending, Approve, before), Ok(Confirmed));
        assert_eq!(ok(Pending, Decline, before), Ok(Declined));
        assert_eq!(ok(Pending, Cancel, before), Ok(Cancelled));
        assert_eq!(ok(Confirmed, Cancel, before), Ok(Cancelled));
        assert_eq!(ok(Confirmed, Cancel, after), Ok(Cancelled));
        assert_eq!(ok(Confirmed, Complete, after), Ok(Completed));
        assert_eq!(ok(Confirmed, Complete, start), Ok(Completed));
        assert_eq!(
            ok(Confirmed, StaffAction::NoShow, after),
            Ok(BookingStatus::NoShow)
        );
        assert_eq!(
            ok(Confirmed, Complete, before),
            Err(BookingError::NotStartedYet { start })
        );
        assert_eq!(
            ok(Confirmed, StaffAction::NoShow, before)
                .unwrap_err()
                .code(),
            "booking_not_started"
        );
        // Everything else is a status conflict, before or after the start.
        let allowed = [
            (Pending, Approve),
            (Pending, Decline),
            (Pending, Cancel),
            (Confirmed, Cancel),
            (Confirmed, Complete),
            (Confirmed, StaffAction::NoShow),
        ];
        for status in BookingStatus::ALL {
            for action in StaffAction::ALL {
                if allowed.contains(&(status, action)) {
                    continue;
                }
                for now in [before, after] {
                    let err = ok(status, action, now).unwrap_err();
                    assert_eq!(
                        err.code(),
                        "booking_status_conflict",
                        "{status:?} {action:?}"
                    );
                    assert!(matches!(
                        err,
                        BookingError::InvalidTransition { status: s, .. } if s == status
                    ));
                }
            }
        }
        assert_eq!(
            ok(Pending, Complete, after).unwrap_err().to_string(),
            "a pending booking cannot be completed"
        );
    }

    #[test]
    fn the_three_lists() {
        use BookingStatus::*;
        let end = START() + TimeDelta::hours(1);
        let (before, after) = (end - TimeDelta::seconds(1), end);
        assert_eq!(view_of(Confirmed, end, before), View::Upcoming);
        assert_eq!(view_of(Confirmed, end, after), View::History);
        assert_eq!(view_of(Pending, end, before), View::Pending);
        assert_eq!(view_of(Pending, end, after), View::Pending);
        for s in [Declined, Cancelled, Completed, NoShow] {
            assert_eq!(view_of(s, end, before), View::History);
        }
    }

    #[test]
    fn customer_actions_follow_the_policies() {
        let start = START();
        let settings = online();
        let deadline = start - TimeDelta::hours(24);
        let open = Actions {
            cancel_until: Some(deadline),
            reschedule_until: Some(deadline),
        };
        let now = deadline - TimeDelta::seconds(1);
        assert_eq!(
            customer_actions(&settings, BookingStatus::Confirmed, start, now),
            open
        );
        assert_eq!(
            customer_actions(&settings, BookingStatus::Pending, start, now),
            open
        );
        // At the deadline, both close.
        assert_eq!(
            customer_actions(&settings, BookingStatus::Confirmed, start, deadline),
            Actions::default()
        );
        // A booking that does not hold its slot offers nothing.
        assert_eq!(
            customer_actions(&settings, BookingStatus::Cancelled, start, now),
            Actions::default()
        );
        // Each policy on its own.
        let mut s = settings.clone();
        s.cancellation.allowed = false;
        s.reschedule.until_hours_before = 2;
        assert_eq!(
            customer_actions(&s, BookingStatus::Confirmed, start, deadline),
            Actions {
                cancel_until: None,
                reschedule_until: Some(start - TimeDelta::hours(2)),
            }
        );
        // Without online booking, a new start cannot be asked for.
        let mut s = settings;
        s.online_booking = false;
        assert_eq!(
            customer_actions(&s, BookingStatus::Confirmed, start, now),
            Actions {
                cancel_until: Some(deadline),
                reschedule_until: None,
            }
        );
        // 0 hours: until the start.
        s.cancellation.until_hours_before = 0;
        assert_eq!(
            customer_actions(
                &s,
                BookingStatus::Confirmed,
                start,
                start - TimeDelta::seconds(1)
            )
            .cancel_until,
            Some(start)
        );
    }

    #[test]
    fn a_customer_start_must_be_online_and_in_the_window() {
        let now = utc(2026, 6, 1, 10, 0);
        let settings = online();
        let earliest = now + TimeDelta::hours(12);
        let latest = now + TimeDelta::days(60);
        assert_eq!(check_customer_start(&settings, earliest, now), Ok(()));
        assert_eq!(check_customer_start(&settings, latest, now), Ok(()));
        let outside = Err(BookingError::OutsideBookingWindow { earliest, latest });
        assert_eq!(
            check_customer_start(&settings, earliest - TimeDelta::minutes(1), now),
            outside
        );
        assert_eq!(
            check_customer_start(&settings, latest + TimeDelta::minutes(1), now),
            outside
        );
        assert_eq!(
            check_customer_start(&BookingSettings::default(), earliest, now),
            Err(BookingError::OnlineBookingDisabled)
        );
    }

    #[test]
    fn cancel_and_reschedule_checks() {
        use BookingStatus::*;
        let start = START();
        let settings = online();
        let deadline = start - TimeDelta::hours(24);
        let early = deadline - TimeDelta::seconds(1);
        assert_eq!(check_cancel(&settings, Confirmed, start, early), Ok(()));
        assert_eq!(check_cancel(&settings, Pending, start, early), Ok(()));
        assert_eq!(
            check_cancel(&settings, Confirmed, start, deadline),
            Err(BookingError::TooLateToCancel { deadline })
        );
        assert_eq!(check_reschedule(&settings, Confirmed, start, early), Ok(()));
        assert_eq!(
            check_reschedule(&settings, Pending, start, deadline),
            Err(BookingError::TooLateToReschedule { deadline })
        );
        for status in [Declined, Cancelled, Completed, NoShow] {
            assert_eq!(
                check_cancel(&settings, status, start, early),
                Err(BookingError::InvalidTransition {
                    status,
                    action: "cancelled"
                })
            );
            assert_eq!(
                check_reschedule(&settings, status, start, early)
                    .unwrap_err()
                    .code(),
                "booking_status_conflict"
            );
        }
        let mut closed = settings;
        closed.cancellation.allowed = false;
        closed.reschedule.allowed = false;
        assert_eq!(
            check_cancel(&closed, Confirmed, start, early),
            Err(BookingError::CancellationNotAllowed)
        );
        assert_eq!(
            check_reschedule(&closed, Confirmed, start, early),
            Err(BookingError::RescheduleNotAllowed)
        );
        // A status conflict comes before the policy.
        assert_eq!(
            check_cancel(&closed, Cancelled, start, early)
                .unwrap_err()
                .code(),
            "booking_status_conflict"
        );
    }

    #[test]
    fn new_requests_pending_limit_and_reminder() {
        let mut s = online();
        assert_eq!(initial_status(&s), BookingStatus::Confirmed);
        // Confirmed at once: the pending count does not matter.
        assert_eq!(check_pending_limit(&s, 5), Ok(()));
        s.confirmation = Confirmation::Manual;
        assert_eq!(initial_status(&s), BookingStatus::Pending);
        assert_eq!(check_pending_limit(&s, 1), Ok(()));
        assert_eq!(
            check_pending_limit(&s, 2),
            Err(BookingError::TooManyPending { max: 2 })
        );
        assert_eq!(
            check_pending_limit(&s, 3).unwrap_err().code(),
            "too_many_pending"
        );
        s.reminder_hours_before = 2;
        assert_eq!(reminder_due_at(&s, START()), utc(2026, 6, 10, 7, 0));
    }
}
