//! When a provider (a staff member or a resource) can deliver services:
//! weekly opening windows in the organization's time zone and exceptions on
//! given days (closed, partly closed, extra openings), turned into UTC
//! intervals day by day so that 09:00 stays 09:00 local across
//! daylight-saving changes.
//!
//! Times of day are minutes since local midnight, `[start, end)`, with 1440
//! standing for the midnight that ends the day.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::error::{BookingError, WindowFault};
use super::zone::{self, Edge};

/// Minutes in a day: the end of a window that closes at midnight.
pub const MINUTES_PER_DAY: u16 = 1440;

/// The most windows a provider's week may hold (eight a day).
pub const MAX_WEEKLY_WINDOWS: usize = 7 * 8;

/// A provider's opening window on one weekday, every week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WeeklyWindow {
    /// The day of the week.
    pub weekday: Weekday,
    /// Opens at this many minutes after local midnight.
    pub start_minute: u16,
    /// Closes at this many minutes after local midnight (exclusive; 1440 is
    /// the next midnight).
    pub end_minute: u16,
}

/// Whether an exception closes the provider or opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// Closed that day, or part of it.
    Closed,
    /// An extra opening that day.
    Open,
}

impl ExceptionKind {
    /// Both kinds.
    pub const ALL: [ExceptionKind; 2] = [ExceptionKind::Closed, ExceptionKind::Open];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Closed => "closed",
            ExceptionKind::Open => "open",
        }
    }

    /// Reads a name written by [`ExceptionKind::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// A change to a provider's weekly windows on one local day. `Closed`
/// without times closes the whole day, `Closed` with times closes that part;
/// `Open` needs times and adds that opening to the day. On a day with both,
/// the closings apply to the weekly windows and the openings are added
/// after, so "closed all day" plus "open 14:00–16:00" opens 14:00–16:00 only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DayException {
    /// The local day.
    pub date: NaiveDate,
    /// Closing or extra opening.
    pub kind: ExceptionKind,
    /// From this minute (with `end_minute`, or neither for a whole-day
    /// closing).
    pub start_minute: Option<u16>,
    /// Until this minute, exclusive.
    pub end_minute: Option<u16>,
}

/// Everything that says when one provider is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAvailability {
    /// The provider's id.
    pub provider_id: String,
    /// The weekly windows.
    pub weekly: Vec<WeeklyWindow>,
    /// The exceptions of the days asked about (others are ignored).
    pub exceptions: Vec<DayException>,
}

fn check_minutes(start: u16, end: u16) -> Result<(), WindowFault> {
    if start > MINUTES_PER_DAY || end > MINUTES_PER_DAY {
        Err(WindowFault::OutOfBounds)
    } else if start >= end {
        Err(WindowFault::StartNotBeforeEnd)
    } else {
        Ok(())
    }
}

/// Checks a provider's week: each window within the day and starting before
/// it ends, no two windows of a weekday overlapping (touching is fine: 9–12
/// and 12–14 read as 9–14), at most [`MAX_WEEKLY_WINDOWS`] windows.
pub fn validate_weekly(windows: &[WeeklyWindow]) -> Result<(), BookingError> {
    if windows.len() > MAX_WEEKLY_WINDOWS {
        return Err(BookingError::InvalidWindow {
            weekday: None,
            fault: WindowFault::TooMany,
        });
    }
    for w in windows {
        check_minutes(w.start_minute, w.end_minute).map_err(|fault| {
            BookingError::InvalidWindow {
                weekday: Some(w.weekday),
                fault,
            }
        })?;
    }
    let mut sorted: Vec<&WeeklyWindow> = windows.iter().collect();
    sorted.sort_by_key(|w| (w.weekday.num_days_from_monday(), w.start_minute));
    for pair in sorted.windows(2) {
        if pair[0].weekday == pair[1].weekday && pair[1].start_minute < pair[0].end_minute {
            return Err(BookingError::InvalidWindow {
                weekday: Some(pair[0].weekday),
                fault: WindowFault::Overlap,
            });
        }
    }
    Ok(())
}

/// Checks an exception's times: none or both for a closing, both for an
/// opening, within the day and starting before they end.
pub fn validate_exception(e: &DayException) -> Result<(), BookingError> {
    let fault = match (e.kind, e.start_minute, e.end_minute) {
        (ExceptionKind::Closed, None, None) => return Ok(()),
        (_, Some(start), Some(end)) => match check_minutes(start, end) {
            Ok(()) => return Ok(()),
            Err(fault) => fault,
        },
        _ => WindowFault::MissingTimes,
    };
    Err(BookingError::InvalidException {
        date: e.date,
        fault,
    })
}

/// Local minute ranges, sorted, overlapping or touching ones joined.
fn normalize(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.retain(|(s, e)| s < e);
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `ranges` without `[cut_start, cut_end)`.
fn subtract(ranges: Vec<(u16, u16)>, cut_start: u16, cut_end: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for (s, e) in ranges {
        if e <= cut_start || cut_end <= s {
            out.push((s, e));
            continue;
        }
        if s < cut_start {
            out.push((s, cut_start));
        }
        if cut_end < e {
            out.push((cut_end, e));
        }
    }
    out
}

/// Sorted intervals with overlapping or touching ones joined.
pub(super) fn merge(
    mut intervals: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    intervals.retain(|(s, e)| s < e);
    intervals.sort_unstable();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// A provider's windows and exceptions, arranged for day-by-day look-ups.
struct Plan<'a> {
    weekly: [Vec<(u16, u16)>; 7],
    exceptions: BTreeMap<NaiveDate, Vec<&'a DayException>>,
}

impl<'a> Plan<'a> {
    fn new(avail: &'a ProviderAvailability) -> Self {
        let mut weekly: [Vec<(u16, u16)>; 7] = Default::default();
        for w in &avail.weekly {
            weekly[w.weekday.num_days_from_monday() as usize].push((
                w.start_minute.min(MINUTES_PER_DAY),
                w.end_minute.min(MINUTES_PER_DAY),
            ));
        }
        let mut exceptions: BTreeMap<NaiveDate, Vec<&DayException>> = BTreeMap::new();
        for e in &avail.exceptions {
            exceptions.entry(e.date).or_default().push(e);
        }
        Plan { weekly, exceptions }
    }

    /// The open minute ranges of a local day.
    fn day(&self, day: NaiveDate) -> Vec<(u16, u16)> {
        let mut ranges = self.weekly[day.weekday().num_days_from_monday() as usize].clone();
        let Some(exceptions) = self.exceptions.get(&day) else {
            return normalize(ranges);
        };
        for e in exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::Closed)
        {
            match (e.start_minute, e.end_minute) {
                (Some(s), Some(end)) => ranges = subtract(ranges, s, end.min(MINUTES_PER_DAY)),
                _ => ranges.clear(),
            }
        }
        for e in exceptions.iter().filter(|e| e.kind == ExceptionKind::Open) {
            if let (Some(s), Some(end)) = (e.start_minute, e.end_minute) {
                ranges.push((s.min(MINUTES_PER_DAY), end.min(MINUTES_PER_DAY)));
            }
        }
        normalize(ranges)
    }
}

/// The instant of `minute` after local midnight of `day` (see
/// [`zone::local_instant`] for gaps and folds).
fn instant(tz: Tz, day: NaiveDate, minute: u16, edge: Edge) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(minute));
    zone::local_instant(tz, local, edge)
}

/// The provider's open intervals in UTC, local day by local day from `first`
/// to `last`: each day's intervals are sorted and joined, but an interval
/// never runs from one local day into the next (so that slots laid from
/// each interval's start fall in the same places whatever range is asked).
pub(super) fn daily_intervals(
    avail: &ProviderAvailability,
    tz: Tz,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let plan = Plan::new(avail);
    let mut out = Vec::new();
    for day in first.iter_days().take_while(|d| *d <= last) {
        let intervals = plan
            .day(day)
            .into_iter()
            .map(|(s, e)| {
                (
                    instant(tz, day, s, Edge::Start),
                    instant(tz, day, e, Edge::End),
                )
            })
            .collect();
        // Wall-clock ranges apart may meet in the repeated autumn hour.
        out.extend(merge(intervals));
    }
    out
}

/// The provider's open intervals in UTC for the local days first..=last,
/// merged, sorted.
///
/// A window's local start and end are converted on each day: 09:00 is 09:00
/// local on both sides of a daylight-saving change; a time skipped by the
/// spring-forward gap is the first instant after the gap (02:30 in Paris on
/// 2026-03-29 is 03:00 local, 01:00Z); a repeated autumn time starts a window
/// at its first occurrence and ends one at its second (01:00–04:00 on
/// 2026-10-25 in Paris lasts four hours).
pub fn open_intervals(
    avail: &ProviderAvailability,
    tz: Tz,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    merge(daily_intervals(avail, tz, first, last))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn w(weekday: Weekday, start: (u16, u16), end: (u16, u16)) -> WeeklyWindow {
        WeeklyWindow {
            weekday,
            start_minute: start.0 * 60 + start.1,
            end_minute: end.0 * 60 + end.1,
        }
    }

    fn provider(weekly: Vec<WeeklyWindow>, exceptions: Vec<DayException>) -> ProviderAvailability {
        ProviderAvailability {
            provider_id: "prv_1".into(),
            weekly,
            exceptions,
        }
    }

    fn exception(
        date: NaiveDate,
        kind: ExceptionKind,
        times: Option<((u16, u16), (u16, u16))>,
    ) -> DayException {
        DayException {
            date,
            kind,
            start_minute: times.map(|(s, _)| s.0 * 60 + s.1),
            end_minute: times.map(|(_, e)| e.0 * 60 + e.1),
        }
    }

    const PARIS: Tz = Tz::Europe__Paris;
    const NEW_YORK: Tz = Tz::America__New_York;

    #[test]
    fn weekly_windows_are_validated() {
        use Weekday::*;
        assert_eq!(
            validate_weekly(&[w(Mon, (9, 0), (12, 0)), w(Mon, (12, 0), (14, 0))]),
            Ok(())
        );
        assert_eq!(validate_weekly(&[w(Sun, (0, 0), (24, 0))]), Ok(()));
        assert_eq!(validate_weekly(&[]), Ok(()));
        let err = validate_weekly(&[w(Tue, (9, 0), (24, 1))]).unwrap_err();
        assert_eq!(
            err,
            BookingError::InvalidWindow {
                weekday: Some(Tue),
                fault: WindowFault::OutOfBounds
            }
        );
        assert_eq!(err.code(), "invalid_window");
        assert_eq!(
            validate_weekly(&[w(Wed, (10, 0), (9, 0))]),
            Err(BookingError::InvalidWindow {
                weekday: Some(Wed),
                fault: WindowFault::StartNotBeforeEnd
            })
        );
        assert_eq!(
            validate_weekly(&[w(Wed, (10, 0), (10, 0))]),
            Err(BookingError::InvalidWindow {
                weekday: Some(Wed),
                fault: WindowFault::StartNotBeforeEnd
            })
        );
        // Overlap on the same day, listed out of order; other days may.
        assert_eq!(
            validate_weekly(&[
                w(Thu, (13, 0), (18, 0)),
                w(Fri, (9, 0), (18, 0)),
                w(Thu, (9, 0), (13, 30)),
            ]),
            Err(BookingError::InvalidWindow {
                weekday: Some(Thu),
                fault: WindowFault::Overlap
            })
        );
        assert_eq!(
            validate_weekly(&[w(Thu, (9, 0), (18, 0)), w(Fri, (9, 0), (18, 0))]),
            Ok(())
        );
        // Eight windows a day, every day: fine; one more: too many.
        let mut week: Vec<WeeklyWindow> = [Mon, Tue, Wed, Thu, Fri, Sat, Sun]
            .into_iter()
            .flat_map(|d| (0..8u16).map(move |i| w(d, (i * 2, 0), (i * 2 + 1, 0))))
            .collect();
        assert_eq!(validate_weekly(&week), Ok(()));
        week.push(w(Mon, (20, 0), (21, 0)));
        assert_eq!(
            validate_weekly(&week),
            Err(BookingError::InvalidWindow {
                weekday: None,
                fault: WindowFault::TooMany
            })
        );
    }

    #[test]
    fn exceptions_are_validated() {
        use ExceptionKind::*;
        let day = date(2026, 5, 1);
        assert_eq!(validate_exception(&exception(day, Closed, None)), Ok(()));
        assert_eq!(
            validate_exception(&exception(day, Closed, Some(((12, 0), (14, 0))))),
            Ok(())
        );
        assert_eq!(
            validate_exception(&exception(day, Open, Some(((18, 0), (24, 0))))),
            Ok(())
        );
        let fault = |e: DayException| match validate_exception(&e) {
            Err(BookingError::InvalidException { date, fault }) => {
                assert_eq!(date, day);
                fault
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(fault(exception(day, Open, None)), WindowFault::MissingTimes);
        let mut half = exception(day, Closed, Some(((12, 0), (14, 0))));
        half.end_minute = None;
        assert_eq!(fault(half), WindowFault::MissingTimes);
        assert_eq!(
            fault(exception(day, Open, Some(((14, 0), (12, 0))))),
            WindowFault::StartNotBeforeEnd
        );
        assert_eq!(
            fault(exception(day, Closed, Some(((23, 0), (25, 0))))),
            WindowFault::OutOfBounds
        );
        assert_eq!(
            validate_exception(&exception(day, Open, None))
                .unwrap_err()
                .code(),
            "invalid_exception"
        );
        for kind in ExceptionKind::ALL {
            assert_eq!(ExceptionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ExceptionKind::parse("holiday"), None);
    }

    #[test]
    fn nine_o_clock_stays_local_in_winter_and_summer() {
        let p = provider(vec![w(Weekday::Tue, (9, 0), (12, 0))], vec![]);
        // Tuesday 2026-01-13 (UTC+1) and Tuesday 2026-07-14 (UTC+2).
        assert_eq!(
            open_intervals(&p, PARIS, date(2026, 1, 12), date(2026, 1, 18)),
            [(utc(2026, 1, 13, 8, 0), utc(2026, 1, 13, 11, 0))]
        );
        assert_eq!(
            open_intervals(&p, PARIS, date(2026, 7, 13), date(2026, 7, 19)),
            [(utc(2026, 7, 14, 7, 0), utc(2026, 7, 14, 10, 0))]
        );
        // New York: UTC−5 in winter, UTC−4 in summer.
        assert_eq!(
            open_intervals(&p, NEW_YORK, date(2026, 1, 13), date(2026, 1, 13)),
            [(utc(2026, 1, 13, 14, 0), utc(2026, 1, 13, 17, 0))]
        );
        assert_eq!(
            open_intervals(&p, NEW_YORK, date(2026, 7, 14), date(2026, 7, 14)),
            [(utc(2026, 7, 14, 13, 0), utc(2026, 7, 14, 16, 0))]
        );
    }

    #[test]
    fn the_spring_change_in_paris() {
        use Weekday::*;
        // Clocks go from 02:00 to 03:00 on Sunday 2026-03-29 (01:00Z).
        let p = provider(
            vec![
                w(Sat, (9, 0), (12, 0)),
                w(Sun, (9, 0), (12, 0)),
                w(Mon, (9, 0), (12, 0)),
            ],
            vec![],
        );
        assert_eq!(
            open_intervals(&p, PARIS, date(2026, 3, 28), date(2026, 3, 30)),
            [
                (utc(2026, 3, 28, 8, 0), utc(2026, 3, 28, 11, 0)),
                (utc(2026, 3, 29, 7, 0), utc(2026, 3, 29, 10, 0)),
                (utc(2026, 3, 30, 7, 0), utc(2026, 3, 30, 10, 0)),
            ]
        );
        let day = date(2026, 3, 29);
        let on_sunday = |start, end| {
            open_intervals(&provider(vec![w(Sun, start, end)], vec![]), PARIS, day, day)
        };
        // 02:30 does not exist: the window opens at 03:00 summer time.
        assert_eq!(
            on_sunday((2, 30), (4, 0)),
            [(utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))]
        );
        // A window ending in the gap ends when the gap ends.
        assert_eq!(
            on_sunday((1, 0), (2, 30)),
            [(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0))]
        );
        // A window wholly inside the gap never opens.
        assert!(on_sunday((2, 0), (3, 0)).is_empty());
        // Around the clock, the day lasts 23 hours.
        assert_eq!(
            on_sunday((0, 0), (24, 0)),
            [(utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0))]
        );
    }

    #[test]
    fn the_autumn_change_in_paris() {
        use Weekday::*;
        // Clocks go from 03:00 back to 02:00 on Sunday 2026-10-25 (01:00Z).
        let p = provider(
            vec![
                w(Sat, (9, 0), (12, 0)),
                w(Sun, (9, 0), (12, 0)),
                w(Mon, (9, 0), (12, 0)),
            ],
            vec![],
        );
        assert_eq!(
            open_intervals(&p, PARIS, date(2026, 10, 24), date(2026, 10, 26)),
            [
                (utc(2026, 10, 24, 7, 0), utc(2026, 10, 24, 10, 0)),
                (utc(2026, 10, 25, 8, 0), utc(2026, 10, 25, 11, 0)),
                (utc(2026, 10, 26, 8, 0), utc(2026, 10, 26, 11, 0)),
            ]
        );
        let day = date(2026, 10, 25);
        let on_sunday = |start, end| {
            open_intervals(&provider(vec![w(Sun, start, end)], vec![]), PARIS, day, day)
        };
        // 01:00–04:00 really lasts four hours.
        let night = on_sunday((1, 0), (4, 0));
        assert_eq!(night, [(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0))]);
        assert_eq!(night[0].1 - night[0].0, TimeDelta::hours(4));
        // A start in the repeated hour is its first occurrence, an end its
        // second.
        assert_eq!(
            on_sunday((2, 30), (3, 30)),
            [(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30))]
        );
        assert_eq!(
            on_sunday((1, 0), (2, 30)),
            [(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 1, 30))]
        );
        // Two wall-clock windows apart meet in the repeated hour.
        let p = provider(
            vec![w(Sun, (1, 0), (2, 30)), w(Sun, (2, 45), (4, 0))],
            vec![],
        );
        assert_eq!(
            open_intervals(&p, PARIS, day, day),
            [(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0))]
        );
        // Around the clock, the day lasts 25 hours.
        assert_eq!(
            on_sunday((0, 0), (24, 0)),
            [(utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0))]
        );
    }

    #[test]
    fn the_changes_in_new_york() {
        use Weekday::*;
        // 2026-03-08: 02:00 EST → 03:00 EDT at 07:00Z.
        let p = provider(
            vec![
                w(Sat, (9, 0), (17, 0)),
                w(Sun, (2, 15), (5, 0)),
                w(Mon, (9, 0), (17, 0)),
            ],
            vec![],
        );
        assert_eq!(
            open_intervals(&p, NEW_YORK, date(2026, 3, 7), date(2026, 3, 9)),
            [
                (utc(2026, 3, 7, 14, 0), utc(2026, 3, 7, 22, 0)),
                (utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 9, 0)),
                (utc(2026, 3, 9, 13, 0), utc(2026, 3, 9, 21, 0)),
            ]
        );
        // 2026-11-01: 02:00 EDT → 01:00 EST at 06:00Z.
        let day = date(2026, 11, 1);
        let on_sunday = |start, end| {
            open_intervals(
                &provider(vec![w(Sun, start, end)], vec![]),
                NEW_YORK,
                day,
                day,
            )
        };
        assert_eq!(
            on_sunday((0, 30), (3, 0)),
            [(utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 8, 0))]
        );
        assert_eq!(
            on_sunday((1, 30), (1, 45)),
            [(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 45))]
        );
        assert_eq!(
            on_sunday((9, 0), (17, 0)),
            [(utc(2026, 11, 1, 14, 0), utc(2026, 11, 1, 22, 0))]
        );
    }

    #[test]
    fn exceptions_close_and_open_days() {
        use ExceptionKind::*;
        use Weekday::*;
        let weekly = vec![w(Mon, (9, 0), (12, 0)), w(Mon, (14, 0), (18, 0))];
        // Mondays 2026-01-12, 19 and 26 (UTC+1).
        let (d12, d19, d26) = (date(2026, 1, 12), date(2026, 1, 19), date(2026, 1, 26));
        let p = provider(
            weekly.clone(),
            vec![
                exception(d12, Closed, None),
                exception(d19, Closed, Some(((10, 0), (15, 0)))),
                exception(d26, Open, Some(((12, 0), (13, 0)))),
                // An opening on a Saturday without weekly windows.
                exception(date(2026, 1, 24), Open, Some(((10, 0), (11, 0)))),
            ],
        );
        assert_eq!(
            open_intervals(&p, PARIS, d12, d26),
            [
                (utc(2026, 1, 19, 8, 0), utc(2026, 1, 19, 9, 0)),
                (utc(2026, 1, 19, 14, 0), utc(2026, 1, 19, 17, 0)),
                (utc(2026, 1, 24, 9, 0), utc(2026, 1, 24, 10, 0)),
                (utc(2026, 1, 26, 8, 0), utc(2026, 1, 26, 12, 0)),
                (utc(2026, 1, 26, 13, 0), utc(2026, 1, 26, 17, 0)),
            ]
        );
        // Closed all day but open 15:00–16:00: that hour only.
        let p = provider(
            weekly,
            vec![
                exception(d12, Open, Some(((15, 0), (16, 0)))),
                exception(d12, Closed, None),
            ],
        );
        assert_eq!(
            open_intervals(&p, PARIS, d12, d12),
            [(utc(2026, 1, 12, 14, 0), utc(2026, 1, 12, 15, 0))]
        );
    }

    #[test]
    fn touching_windows_and_days_are_merged() {
        use Weekday::*;
        let p = provider(
            vec![
                w(Tue, (12, 0), (14, 0)),
                w(Tue, (9, 0), (12, 0)),
                w(Tue, (20, 0), (24, 0)),
                w(Wed, (0, 0), (2, 0)),
            ],
            vec![],
        );
        let (tue, wed) = (date(2026, 1, 13), date(2026, 1, 14));
        assert_eq!(
            open_intervals(&p, PARIS, tue, wed),
            [
                (utc(2026, 1, 13, 8, 0), utc(2026, 1, 13, 13, 0)),
                (utc(2026, 1, 13, 19, 0), utc(2026, 1, 14, 1, 0)),
            ]
        );
        // Day by day, the midnight join is not made.
        assert_eq!(
            daily_intervals(&p, PARIS, tue, wed),
            [
                (utc(2026, 1, 13, 8, 0), utc(2026, 1, 13, 13, 0)),
                (utc(2026, 1, 13, 19, 0), utc(2026, 1, 13, 23, 0)),
                (utc(2026, 1, 13, 23, 0), utc(2026, 1, 14, 1, 0)),
            ]
        );
        assert!(open_intervals(&p, PARIS, wed, tue).is_empty());
    }
}
