//! The free slots of a service: each provider's open intervals, cut on a
//! grid of the service's duration plus its buffer, minus what the
//! provider's bookings (and their buffers) already hold, within the
//! business's booking window.

use std::collections::HashMap;

use chrono::{DateTime, Days, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::availability::{ProviderAvailability, daily_intervals, merge};
use super::error::BookingError;
use super::settings::BookingSettings;

/// The longest range one slot search may cover.
pub const MAX_RANGE_DAYS: i64 = 31;

/// How long a service takes and how long its provider needs after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceTiming {
    /// 5 to 480 minutes, a multiple of 5.
    pub duration_minutes: u32,
    /// 0 to 240 minutes after each booking, a multiple of 5.
    pub buffer_after_minutes: u32,
}

impl ServiceTiming {
    /// Checks the duration, then the buffer.
    pub fn validate(&self) -> Result<(), BookingError> {
        let d = self.duration_minutes;
        if !(5..=480).contains(&d) || !d.is_multiple_of(5) {
            return Err(BookingError::InvalidDuration { minutes: d });
        }
        let b = self.buffer_after_minutes;
        if b > 240 || !b.is_multiple_of(5) {
            return Err(BookingError::InvalidBuffer { minutes: b });
        }
        Ok(())
    }

    /// The service's length.
    pub fn duration(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.duration_minutes))
    }

    /// The end of a booking starting at `start`.
    pub fn end(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start + self.duration()
    }

    /// Until when a booking starting at `start` keeps its provider busy: its
    /// end plus the buffer (what [`Busy::until`] holds).
    pub fn busy_until(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        self.end(start) + TimeDelta::minutes(i64::from(self.buffer_after_minutes))
    }
}

/// A range a provider is already taken: a booking that holds its slot, from
/// its start to its end plus its service's buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Busy {
    /// The provider taken.
    pub provider_id: String,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// Until (exclusive): the booking's end plus its buffer.
    pub until: DateTime<Utc>,
}

/// A start the customer may pick, and who is free then.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    /// When the service would start.
    pub start: DateTime<Utc>,
    /// When it would end (without the buffer).
    pub end: DateTime<Utc>,
    /// The providers free for it, in the order they were given.
    pub provider_ids: Vec<String>,
}

/// The customer's booking window at `now`: the earliest start (`now` plus
/// the minimum notice) and the latest (`now` plus the horizon in days of 24
/// hours).
pub fn booking_window(
    settings: &BookingSettings,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        now + TimeDelta::minutes(i64::from(settings.min_notice_minutes)),
        now + TimeDelta::days(i64::from(settings.horizon_days)),
    )
}

/// Checks a slot search's range: `from` before `to`, at most
/// [`MAX_RANGE_DAYS`] apart.
pub fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), BookingError> {
    if from < to && to - from <= TimeDelta::days(MAX_RANGE_DAYS) {
        Ok(())
    } else {
        Err(BookingError::InvalidRange {
            max_days: MAX_RANGE_DAYS,
        })
    }
}

/// The smallest `k >= 0` with `origin + k * step >= target` (`step` > 0).
fn steps_to(origin: DateTime<Utc>, step: TimeDelta, target: DateTime<Utc>) -> i32 {
    if target <= origin {
        return 0;
    }
    let whole = (target - origin).num_seconds() / step.num_seconds().max(1);
    let mut k = i32::try_from(whole).unwrap_or(i32::MAX);
    if origin + step * k < target {
        k = k.saturating_add(1);
    }
    k
}

/// Free slots of the service in [from, to): per provider, candidate starts on
/// a grid that begins at each open interval's start and steps by
/// duration+buffer; a start is kept when [start, start+duration] fits inside
/// the open interval, [start, start+duration+buffer) overlaps no Busy of that
/// provider, start >= earliest and start <= latest. Slots with the same start
/// across providers are merged (provider_ids sorted, in the order of
/// `providers`). Sorted by start.
///
/// A slot is in the range when it starts in it. Open intervals are taken day
/// by day (see [`super::open_intervals`]) without joining a window that ends
/// at midnight to the next day's, so that the grid, and the slots, are the
/// same whatever range is asked. Busy ranges of providers not listed are
/// ignored; a provider listed twice counts once.
///
/// Each provider's busy ranges are sorted once and swept along its grid, so
/// the work grows with the number of slots plus busy ranges, not their
/// product.
#[allow(clippy::too_many_arguments)]
pub fn free_slots(
    timing: &ServiceTiming,
    providers: &[ProviderAvailability],
    busy: &[Busy],
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    earliest: DateTime<Utc>,
    latest: DateTime<Utc>,
) -> Vec<Slot> {
    let duration = timing.duration();
    let step = duration + TimeDelta::minutes(i64::from(timing.buffer_after_minutes));
    let low = from.max(earliest);
    if duration <= TimeDelta::zero() || low >= to || low > latest {
        return Vec::new();
    }
    let high = to.min(latest);
    // A day either side: a window's day and its instants' UTC dates differ.
    let first_day = low.with_timezone(&tz).date_naive();
    let first_day = first_day
        .checked_sub_days(Days::new(1))
        .unwrap_or(first_day);
    let last_day = high.with_timezone(&tz).date_naive();
    let last_day = last_day.checked_add_days(Days::new(1)).unwrap_or(last_day);

    let mut index: HashMap<&str, usize> = HashMap::with_capacity(providers.len());
    for (i, p) in providers.iter().enumerate() {
        index.entry(p.provider_id.as_str()).or_insert(i);
    }
    let mut taken: Vec<Vec<(DateTime<Utc>, DateTime<Utc>)>> = vec![Vec::new(); providers.len()];
    for b in busy {
        if let Some(&i) = index.get(b.provider_id.as_str()) {
            taken[i].push((b.start, b.until));
        }
    }

    let mut found: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for (i, provider) in providers.iter().enumerate() {
        if index.get(provider.provider_id.as_str()) != Some(&i) {
            continue;
        }
        // Disjoint and sorted: their ends rise with their starts.
        let taken = merge(std::mem::take(&mut taken[i]));
        for (open, close) in daily_intervals(provider, tz, first_day, last_day) {
            let mut k = steps_to(open, step, low);
            let mut next = taken.partition_point(|&(_, until)| until <= open + step * k);
            loop {
                let start = open + step * k;
                if start >= to || start > latest || start + duration > close {
                    break;
                }
                while next < taken.len() && taken[next].1 <= start {
                    next += 1;
                }
                match taken.get(next) {
                    Some(&(busy_start, busy_until)) if busy_start < start + step => {
                        k = steps_to(open, step, busy_until).max(k.saturating_add(1));
                    }
                    _ => {
                        found.push((start, i));
                        k = k.saturating_add(1);
                    }
                }
            }
        }
    }
    found.sort_unstable();
    found.dedup();

    let mut slots: Vec<Slot> = Vec::new();
    for (start, i) in found {
        let id = providers[i].provider_id.clone();
        match slots.last_mut() {
            Some(last) if last.start == start => last.provider_ids.push(id),
            _ => slots.push(Slot {
                start,
                end: start + duration,
                provider_ids: vec![id],
            }),
        }
    }
    slots
}

/// The free slot starting exactly at `start`, if there is one: what a
/// request for that start may take (the same rules as [`free_slots`]).
pub fn slot_at(
    timing: &ServiceTiming,
    providers: &[ProviderAvailability],
    busy: &[Busy],
    tz: Tz,
    start: DateTime<Utc>,
    earliest: DateTime<Utc>,
    latest: DateTime<Utc>,
) -> Option<Slot> {
    let to = start + TimeDelta::seconds(1);
    free_slots(timing, providers, busy, tz, start, to, earliest, latest)
        .into_iter()
        .find(|s| s.start == start)
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate, TimeZone, Weekday};

    use super::*;
    use crate::bookings::availability::{DayException, ExceptionKind, WeeklyWindow};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    const PARIS: Tz = Tz::Europe__Paris;

    fn provider(id: &str, windows: &[(Weekday, u16, u16)]) -> ProviderAvailability {
        ProviderAvailability {
            provider_id: id.into(),
            weekly: windows
                .iter()
                .map(|&(weekday, start, end)| WeeklyWindow {
                    weekday,
                    start_minute: start * 60,
                    end_minute: end * 60,
                })
                .collect(),
            exceptions: vec![],
        }
    }

    fn busy(id: &str, start: DateTime<Utc>, until: DateTime<Utc>) -> Busy {
        Busy {
            provider_id: id.into(),
            start,
            until,
        }
    }

    fn timing(duration: u32, buffer: u32) -> ServiceTiming {
        ServiceTiming {
            duration_minutes: duration,
            buffer_after_minutes: buffer,
        }
    }

    fn starts(slots: &[Slot]) -> Vec<DateTime<Utc>> {
        slots.iter().map(|s| s.start).collect()
    }

    /// Monday 2026-01-12 in Paris (UTC+1), the whole day, no booking window.
    fn monday(
        timing: &ServiceTiming,
        providers: &[ProviderAvailability],
        busy: &[Busy],
    ) -> Vec<Slot> {
        free_slots(
            timing,
            providers,
            busy,
            PARIS,
            utc(2026, 1, 11, 23, 0),
            utc(2026, 1, 12, 23, 0),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        )
    }

    #[test]
    fn timings_are_validated() {
        assert_eq!(timing(30, 10).validate(), Ok(()));
        assert_eq!(timing(5, 0).validate(), Ok(()));
        assert_eq!(timing(480, 240).validate(), Ok(()));
        for minutes in [0, 4, 7, 485, 1000] {
            let err = timing(minutes, 0).validate().unwrap_err();
            assert_eq!(err, BookingError::InvalidDuration { minutes });
            assert_eq!(err.code(), "invalid_duration");
        }
        for minutes in [3, 245] {
            let err = timing(30, minutes).validate().unwrap_err();
            assert_eq!(err, BookingError::InvalidBuffer { minutes });
            assert_eq!(err.code(), "invalid_buffer");
        }
        let t = timing(45, 15);
        let start = utc(2026, 1, 12, 8, 0);
        assert_eq!(t.end(start), utc(2026, 1, 12, 8, 45));
        assert_eq!(t.busy_until(start), utc(2026, 1, 12, 9, 0));
    }

    #[test]
    fn the_booking_window_and_the_range() {
        let now = utc(2026, 1, 12, 10, 17);
        let settings = BookingSettings::default();
        assert_eq!(
            booking_window(&settings, now),
            (utc(2026, 1, 12, 22, 17), utc(2026, 3, 13, 10, 17))
        );
        assert_eq!(check_range(now, now + TimeDelta::days(31)), Ok(()));
        let err = check_range(now, now + TimeDelta::days(31) + TimeDelta::seconds(1));
        assert_eq!(err, Err(BookingError::InvalidRange { max_days: 31 }));
        assert_eq!(err.unwrap_err().code(), "invalid_range");
        assert!(check_range(now, now).is_err());
        assert!(check_range(now, now - TimeDelta::days(1)).is_err());
    }

    #[test]
    fn starts_step_by_duration_and_buffer_and_must_end_inside_the_window() {
        let p = [provider("prv_a", &[(Weekday::Mon, 9, 12)])];
        // 30 + 15: 9:00, 9:45, 10:30, 11:15 (ends 11:45; its buffer may pass
        // the closing), not 12:00.
        let slots = monday(&timing(30, 15), &p, &[]);
        assert_eq!(
            starts(&slots),
            [
                utc(2026, 1, 12, 8, 0),
                utc(2026, 1, 12, 8, 45),
                utc(2026, 1, 12, 9, 30),
                utc(2026, 1, 12, 10, 15),
            ]
        );
        assert_eq!(slots[0].end, utc(2026, 1, 12, 8, 30));
        assert_eq!(slots[0].provider_ids, ["prv_a"]);
        // 60 + 0: 9, 10, 11.
        assert_eq!(monday(&timing(60, 0), &p, &[]).len(), 3);
        // Longer than the window: nothing.
        assert!(monday(&timing(240, 0), &p, &[]).is_empty());
    }

    #[test]
    fn bookings_and_their_buffers_take_starts() {
        let p = [provider("prv_a", &[(Weekday::Mon, 9, 12)])];
        let t = timing(30, 15);
        // A booking 9:45–10:15 plus 15 min: 9:00 touches it and stays,
        // 9:45 goes, 10:30 touches its end and stays.
        let b = [busy(
            "prv_a",
            utc(2026, 1, 12, 8, 45),
            utc(2026, 1, 12, 9, 30),
        )];
        assert_eq!(
            starts(&monday(&t, &p, &b)),
            [
                utc(2026, 1, 12, 8, 0),
                utc(2026, 1, 12, 9, 30),
                utc(2026, 1, 12, 10, 15),
            ]
        );
        // Off the grid (10:00–10:20): only 9:45 (busy with its buffer until
        // 10:30) goes.
        let b = [busy(
            "prv_a",
            utc(2026, 1, 12, 9, 0),
            utc(2026, 1, 12, 9, 20),
        )];
        assert_eq!(
            starts(&monday(&t, &p, &b)),
            [
                utc(2026, 1, 12, 8, 0),
                utc(2026, 1, 12, 9, 30),
                utc(2026, 1, 12, 10, 15),
            ]
        );
        // A start whose buffer would run into a booking goes too: a booking
        // 9:40–9:50 takes 9:00 (busy with its buffer until 9:45) and 9:45.
        let b = [busy(
            "prv_a",
            utc(2026, 1, 12, 8, 40),
            utc(2026, 1, 12, 8, 50),
        )];
        assert_eq!(
            starts(&monday(&t, &p, &b)),
            [utc(2026, 1, 12, 9, 30), utc(2026, 1, 12, 10, 15),]
        );
        // Overlapping and nested bookings, and another provider's, in any
        // order.
        let b = [
            busy("prv_z", utc(2026, 1, 12, 8, 0), utc(2026, 1, 12, 11, 0)),
            busy("prv_a", utc(2026, 1, 12, 9, 0), utc(2026, 1, 12, 9, 10)),
            busy("prv_a", utc(2026, 1, 12, 8, 50), utc(2026, 1, 12, 9, 40)),
        ];
        assert_eq!(
            starts(&monday(&t, &p, &b)),
            [utc(2026, 1, 12, 8, 0), utc(2026, 1, 12, 10, 15)]
        );
    }

    #[test]
    fn notice_horizon_and_range_bound_the_starts() {
        let p = [provider("prv_a", &[(Weekday::Mon, 9, 12)])];
        let t = timing(60, 0);
        let run = |from, to, earliest, latest| {
            starts(&free_slots(&t, &p, &[], PARIS, from, to, earliest, latest))
        };
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        let (nine, ten, eleven) = (
            utc(2026, 1, 12, 8, 0),
            utc(2026, 1, 12, 9, 0),
            utc(2026, 1, 12, 10, 0),
        );
        // `to` is exclusive, `from` inclusive.
        assert_eq!(run(nine, eleven, min, max), [nine, ten]);
        assert_eq!(run(nine + TimeDelta::seconds(1), eleven, min, max), [ten]);
        // `earliest` and `latest` are both inclusive.
        let day = (utc(2026, 1, 11, 23, 0), utc(2026, 1, 12, 23, 0));
        assert_eq!(run(day.0, day.1, ten, max), [ten, eleven]);
        assert_eq!(run(day.0, day.1, min, ten), [nine, ten]);
        assert!(run(day.0, day.1, eleven, ten).is_empty());
        // Starting mid-window keeps the window's grid: 30 + 10 from 9:00
        // gives 10:20, whether the search starts at 10:00 or at midnight.
        let t = timing(30, 10);
        let from_ten = free_slots(&t, &p, &[], PARIS, ten, day.1, min, max);
        assert_eq!(from_ten[0].start, utc(2026, 1, 12, 9, 20));
        let all = free_slots(&t, &p, &[], PARIS, day.0, day.1, min, max);
        assert!(all.ends_with(&from_ten));
        assert_eq!(
            slot_at(&t, &p, &[], PARIS, utc(2026, 1, 12, 9, 20), min, max),
            Some(from_ten[0].clone())
        );
        assert_eq!(
            slot_at(&t, &p, &[], PARIS, utc(2026, 1, 12, 9, 30), min, max),
            None
        );
        assert_eq!(
            slot_at(&t, &p, &[], PARIS, utc(2026, 1, 12, 9, 20), min, ten),
            None
        );
    }

    #[test]
    fn providers_free_at_the_same_start_share_a_slot() {
        let p = [
            provider("prv_b", &[(Weekday::Mon, 9, 11)]),
            provider("prv_a", &[(Weekday::Mon, 10, 12)]),
            // Listed twice: counted once.
            provider("prv_b", &[(Weekday::Mon, 9, 11)]),
        ];
        let b = [busy(
            "prv_a",
            utc(2026, 1, 12, 10, 0),
            utc(2026, 1, 12, 11, 0),
        )];
        let slots = monday(&timing(60, 0), &p, &b);
        let summary: Vec<(u32, Vec<&str>)> = slots
            .iter()
            .map(|s| {
                (
                    s.start
                        .with_timezone(&PARIS)
                        .time()
                        .format("%H")
                        .to_string()
                        .parse()
                        .unwrap(),
                    s.provider_ids.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(summary, [(9, vec!["prv_b"]), (10, vec!["prv_b", "prv_a"]),]);
        assert!(monday(&timing(60, 0), &[], &b).is_empty());
    }

    #[test]
    fn slots_keep_to_local_time_across_the_change_and_closed_days() {
        // Saturday to Monday around 2026-03-29 in Paris, 9:00–11:00.
        let mut p = provider(
            "prv_a",
            &[
                (Weekday::Sat, 9, 11),
                (Weekday::Sun, 9, 11),
                (Weekday::Mon, 9, 11),
                (Weekday::Tue, 9, 11),
            ],
        );
        p.exceptions.push(DayException {
            date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
            kind: ExceptionKind::Closed,
            start_minute: None,
            end_minute: None,
        });
        let slots = free_slots(
            &timing(60, 0),
            &[p],
            &[],
            PARIS,
            utc(2026, 3, 28, 0, 0),
            utc(2026, 4, 1, 0, 0),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        );
        assert_eq!(
            starts(&slots),
            [
                utc(2026, 3, 28, 8, 0),
                utc(2026, 3, 28, 9, 0),
                utc(2026, 3, 29, 7, 0),
                utc(2026, 3, 29, 8, 0),
                utc(2026, 3, 30, 7, 0),
                utc(2026, 3, 30, 8, 0),
            ]
        );
        for s in &slots {
            assert_eq!(s.start.with_timezone(&PARIS).format("%M").to_string(), "00");
        }
    }

    /// The rule read literally, one busy range at a time.
    fn reference(
        t: &ServiceTiming,
        providers: &[ProviderAvailability],
        busy: &[Busy],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        earliest: DateTime<Utc>,
        latest: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, Vec<String>)> {
        let mut by_start: std::collections::BTreeMap<DateTime<Utc>, Vec<String>> =
            Default::default();
        let duration = TimeDelta::minutes(i64::from(t.duration_minutes));
        let step = duration + TimeDelta::minutes(i64::from(t.buffer_after_minutes));
        for p in providers {
            let mut day = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
            while day <= NaiveDate::from_ymd_opt(2026, 2, 2).unwrap() {
                for w in p.weekly.iter().filter(|w| w.weekday == day.weekday()) {
                    // January in Paris: UTC+1.
                    let midnight =
                        day.and_hms_opt(0, 0, 0).unwrap().and_utc() - TimeDelta::hours(1);
                    let open = midnight + TimeDelta::minutes(i64::from(w.start_minute));
                    let close = midnight + TimeDelta::minutes(i64::from(w.end_minute));
                    let mut s = open;
                    while s + duration <= close {
                        let free = busy.iter().all(|b| {
                            b.provider_id != p.provider_id || !(s < b.until && b.start < s + step)
                        });
                        if free && s >= from && s < to && s >= earliest && s <= latest {
                            by_start.entry(s).or_default().push(p.provider_id.clone());
                        }
                        s += step;
                    }
                }
                day = day.succ_opt().unwrap();
            }
        }
        by_start.into_iter().collect()
    }

    #[test]
    fn a_month_of_five_providers_with_two_thousand_bookings() {
        use Weekday::*;
        let workdays = [Mon, Tue, Wed, Thu, Fri, Sat];
        let providers: Vec<ProviderAvailability> = (0..5)
            .map(|i| {
                let id = format!("prv_{i}");
                let windows: Vec<(Weekday, u16, u16)> = if i % 2 == 0 {
                    workdays.iter().map(|&d| (d, 8, 19)).collect()
                } else {
                    workdays
                        .iter()
                        .flat_map(|&d| [(d, 9, 12), (d, 13, 18)])
                        .collect()
                };
                provider(&id, &windows)
            })
            .collect();
        // Deterministic pseudo-random bookings over January 2026, any minute,
        // 15 to 120 minutes, some overlapping each other.
        let month = utc(2026, 1, 1, 0, 0);
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let busy: Vec<Busy> = (0..2000)
            .map(|_| {
                let provider = format!("prv_{}", next() % 5);
                let start = month + TimeDelta::minutes((next() % (31 * 1440)) as i64);
                let until = start + TimeDelta::minutes(15 + (next() % 106) as i64);
                Busy {
                    provider_id: provider,
                    start,
                    until,
                }
            })
            .collect();
        let t = timing(30, 10);
        let from = utc(2025, 12, 31, 23, 0);
        let to = from + TimeDelta::days(31);
        let earliest = from + TimeDelta::hours(12);
        let latest = from + TimeDelta::days(30);

        let slots = free_slots(&t, &providers, &busy, PARIS, from, to, earliest, latest);
        let got: Vec<(DateTime<Utc>, Vec<String>)> = slots
            .iter()
            .map(|s| (s.start, s.provider_ids.clone()))
            .collect();
        let want = reference(&t, &providers, &busy, from, to, earliest, latest);
        assert_eq!(got, want);
        // Not vacuous: plenty of slots, bookings took some, some are shared
        // (the even providers open at 8:00, the odd ones at 9:00 and 13:00).
        let offered: usize = slots.iter().map(|s| s.provider_ids.len()).sum();
        let without_bookings: usize =
            free_slots(&t, &providers, &[], PARIS, from, to, earliest, latest)
                .iter()
                .map(|s| s.provider_ids.len())
                .sum();
        assert!(offered > 500, "{offered}");
        assert!(
            without_bookings > offered + 1_000,
            "{without_bookings} vs {offered}"
        );
        assert!(slots.iter().any(|s| s.provider_ids.len() == 3));
        assert!(slots.iter().any(|s| s.provider_ids == ["prv_1", "prv_3"]));
        assert!(slots.windows(2).all(|w| w[0].start < w[1].start));
        assert!(
            slots
                .iter()
                .all(|s| s.end == s.start + TimeDelta::minutes(30))
        );
    }
}
