//! Bookings: the business's online-booking settings, its providers' weekly
//! availability and exceptions, the free slots of a service, the life of a
//! booking (customer requests, staff decisions, cancel and reschedule under
//! the business's rules) and its iCalendar invitation.
//!
//! Everything is pure: instants are UTC, wall-clock times are minutes since
//! local midnight in the organization's IANA time zone, and `now` is always a
//! parameter. A refused request is a [`BookingError`] with a stable `code()`.

pub mod availability;
pub mod calendar;
pub mod error;
pub mod settings;
pub mod slots;
pub mod status;
mod zone;

pub use availability::{
    DayException, ExceptionKind, MAX_WEEKLY_WINDOWS, MINUTES_PER_DAY, ProviderAvailability,
    WeeklyWindow, open_intervals, validate_exception, validate_weekly,
};
pub use calendar::{CalendarInvite, CalendarMethod, ics};
pub use error::{BookingError, WindowFault};
pub use settings::{BookingSettings, ChangePolicy, Confirmation};
pub use slots::{
    Busy, MAX_RANGE_DAYS, ServiceTiming, Slot, booking_window, check_range, free_slots, slot_at,
};
pub use status::{
    Actions, BookingStatus, StaffAction, View, check_cancel, check_customer_start,
    check_pending_limit, check_reschedule, customer_actions, initial_status, reminder_due_at,
    staff_transition, view_of,
};
