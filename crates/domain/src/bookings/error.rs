//! Why a booking rule refused: one enum for the whole vertical, each variant
//! with a stable snake_case [`BookingError::code`] for problem bodies and the
//! values a problem detail needs (a deadline, the window, the field).

use chrono::{DateTime, NaiveDate, Utc, Weekday};

use super::status::BookingStatus;

/// What is wrong with an opening window or an exception's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowFault {
    /// A minute past 1440 (times are minutes since local midnight, 1440 being
    /// the midnight that ends the day).
    OutOfBounds,
    /// The window does not start before it ends.
    StartNotBeforeEnd,
    /// Two windows of the same weekday overlap (touching is fine).
    Overlap,
    /// More than [`super::MAX_WEEKLY_WINDOWS`] windows in a week.
    TooMany,
    /// An opening exception without its times, or only one of the two.
    MissingTimes,
}

impl WindowFault {
    /// The stable snake_case name, for a problem detail.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowFault::OutOfBounds => "out_of_bounds",
            WindowFault::StartNotBeforeEnd => "start_not_before_end",
            WindowFault::Overlap => "overlap",
            WindowFault::TooMany => "too_many",
            WindowFault::MissingTimes => "missing_times",
        }
    }
}

impl std::fmt::Display for WindowFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WindowFault::OutOfBounds => "times are minutes from 0 to 1440",
            WindowFault::StartNotBeforeEnd => "a window must start before it ends",
            WindowFault::Overlap => "windows of the same day overlap",
            WindowFault::TooMany => "too many windows in the week",
            WindowFault::MissingTimes => "both a start and an end minute are needed",
        })
    }
}

/// Why a booking request, a staff action or a setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    /// The business does not take bookings online.
    #[error("online booking is disabled")]
    OnlineBookingDisabled,
    /// The start is sooner than the minimum notice or further ahead than the
    /// horizon.
    #[error("the start must be between {earliest} and {latest}")]
    OutsideBookingWindow {
        /// The earliest start accepted now.
        earliest: DateTime<Utc>,
        /// The latest start accepted now.
        latest: DateTime<Utc>,
    },
    /// The cancellation deadline has passed.
    #[error("bookings can be cancelled until {deadline}")]
    TooLateToCancel {
        /// The last instant (exclusive) a cancellation was accepted.
        deadline: DateTime<Utc>,
    },
    /// The business does not let customers cancel.
    #[error("the business does not let customers cancel bookings")]
    CancellationNotAllowed,
    /// The reschedule deadline has passed.
    #[error("bookings can be rescheduled until {deadline}")]
    TooLateToReschedule {
        /// The last instant (exclusive) a reschedule was accepted.
        deadline: DateTime<Utc>,
    },
    /// The business does not let customers reschedule.
    #[error("the business does not let customers reschedule bookings")]
    RescheduleNotAllowed,
    /// The action does not apply to a booking in this status.
    #[error("a {} booking cannot be {action}", status.as_str())]
    InvalidTransition {
        /// The booking's current status.
        status: BookingStatus,
        /// What was attempted, as a verb in the past participle
        /// (`approved`, `cancelled`, `rescheduled`...).
        action: &'static str,
    },
    /// Completed / no-show are only recorded once the booking has started.
    #[error("the booking has not started yet (it starts at {start})")]
    NotStartedYet {
        /// The booking's start.
        start: DateTime<Utc>,
    },
    /// A service lasts 5 to 480 minutes, in steps of 5.
    #[error("a duration is 5 to 480 minutes, a multiple of 5 (got {minutes})")]
    InvalidDuration {
        /// The duration given.
        minutes: u32,
    },
    /// A buffer after a service is 0 to 240 minutes, in steps of 5.
    #[error("a buffer is 0 to 240 minutes, a multiple of 5 (got {minutes})")]
    InvalidBuffer {
        /// The buffer given.
        minutes: u32,
    },
    /// A weekly opening window is out of bounds, reversed or overlapping.
    #[error("invalid opening window: {fault}")]
    InvalidWindow {
        /// The day of the faulty window (`None` when the week as a whole is
        /// at fault, as with too many windows).
        weekday: Option<Weekday>,
        /// What is wrong.
        fault: WindowFault,
    },
    /// An exception's times are missing, out of bounds or reversed.
    #[error("invalid exception on {date}: {fault}")]
    InvalidException {
        /// The exception's day.
        date: NaiveDate,
        /// What is wrong.
        fault: WindowFault,
    },
    /// A booking setting is out of its range.
    #[error("{field} must be between {min} and {max}")]
    InvalidSetting {
        /// The setting, as named in [`super::BookingSettings`]
        /// (`horizon_days`, `cancellation.until_hours_before`...).
        field: &'static str,
        /// The smallest value accepted.
        min: u32,
        /// The largest value accepted.
        max: u32,
    },
    /// The customer already holds as many pending requests as allowed.
    #[error("at most {max} pending requests at a time")]
    TooManyPending {
        /// The business's limit.
        max: u32,
    },
    /// A slot search must cover a non-empty range of at most
    /// [`super::MAX_RANGE_DAYS`] days.
    #[error("the range must end after it starts and span at most {max_days} days")]
    InvalidRange {
        /// The longest range accepted, in days.
        max_days: i64,
    },
    /// The start is not (or no longer) a free slot of the service.
    #[error("the slot starting at {start} is not available")]
    SlotTaken {
        /// The start asked for.
        start: DateTime<Utc>,
    },
}

impl BookingError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            BookingError::OnlineBookingDisabled => "online_booking_disabled",
            BookingError::OutsideBookingWindow { .. } => "outside_booking_window",
            BookingError::TooLateToCancel { .. } => "too_late_to_cancel",
            BookingError::CancellationNotAllowed => "cancellation_not_allowed",
            BookingError::TooLateToReschedule { .. } => "too_late_to_reschedule",
            BookingError::RescheduleNotAllowed => "reschedule_not_allowed",
            BookingError::InvalidTransition { .. } => "booking_status_conflict",
            BookingError::NotStartedYet { .. } => "booking_not_started",
            BookingError::InvalidDuration { .. } => "invalid_duration",
            BookingError::InvalidBuffer { .. } => "invalid_buffer",
            BookingError::InvalidWindow { .. } => "invalid_window",
            BookingError::InvalidException { .. } => "invalid_exception",
            BookingError::InvalidSetting { .. } => "invalid_setting",
            BookingError::TooManyPending { .. } => "too_many_pending",
            BookingError::InvalidRange { .. } => "invalid_range",
            BookingError::SlotTaken { .. } => "slot_taken",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_carry_the_details() {
        let deadline = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 1, 9, 0, 0)
            .single()
            .unwrap();
        let cases: [(BookingError, &str); 16] = [
            (
                BookingError::OnlineBookingDisabled,
                "online_booking_disabled",
            ),
            (
                BookingError::OutsideBookingWindow {
                    earliest: deadline,
                    latest: deadline,
                },
                "outside_booking_window",
            ),
            (
                BookingError::TooLateToCancel { deadline },
                "too_late_to_cancel",
            ),
            (
                BookingError::CancellationNotAllowed,
                "cancellation_not_allowed",
            ),
            (
                BookingError::TooLateToReschedule { deadline },
                "too_late_to_reschedule",
            ),
            (BookingError::RescheduleNotAllowed, "reschedule_not_allowed"),
            (
                BookingError::InvalidTransition {
                    status: BookingStatus::Declined,
                    action: "approved",
                },
                "booking_status_conflict",
            ),
            (
                BookingError::NotStartedYet { start: deadline },
                "booking_not_started",
            ),
            (
                BookingError::InvalidDuration { minutes: 7 },
                "invalid_duration",
            ),
            (BookingError::InvalidBuffer { minutes: 7 }, "invalid_buffer"),
            (
                BookingError::InvalidWindow {
                    weekday: Some(Weekday::Mon),
                    fault: WindowFault::Overlap,
                },
                "invalid_window",
            ),
            (
                BookingError::InvalidException {
                    date: deadline.date_naive(),
                    fault: WindowFault::MissingTimes,
                },
                "invalid_exception",
            ),
            (
                BookingError::InvalidSetting {
                    field: "horizon_days",
                    min: 1,
                    max: 365,
                },
                "invalid_setting",
            ),
            (BookingError::TooManyPending { max: 2 }, "too_many_pending"),
            (BookingError::InvalidRange { max_days: 31 }, "invalid_range"),
            (BookingError::SlotTaken { start: deadline }, "slot_taken"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert!(!error.to_string().is_empty());
        }
        assert_eq!(
            BookingError::TooLateToCancel { deadline }.to_string(),
            "bookings can be cancelled until 2026-03-01 09:00:00 UTC"
        );
        assert_eq!(
            BookingError::InvalidTransition {
                status: BookingStatus::Declined,
                action: "approved"
            }
            .to_string(),
            "a declined booking cannot be approved"
        );
        assert_eq!(
            BookingError::InvalidSetting {
                field: "horizon_days",
                min: 1,
                max: 365
            }
            .to_string(),
            "horizon_days must be between 1 and 365"
        );
    }
}
