//! Wall-clock times to instants, and the instants where a zone's offset
//! changes, shared by the availability and the calendar invitation.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};

/// Which end of an interval a wall-clock time stands for: a repeated time
/// (autumn) starts at its first occurrence and ends at its second, so that a
/// window across the fold lasts as long as the clock says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    Start,
    End,
}

/// The offset in force at `t`: seconds east of UTC, and the daylight-saving
/// part of it in seconds.
pub(super) fn offset_at(tz: Tz, t: DateTime<Utc>) -> (i32, i64) {
    let offset = tz.offset_from_utc_datetime(&t.naive_utc());
    (
        offset.fix().local_minus_utc(),
        offset.dst_offset().num_seconds(),
    )
}

/// The first second from which `hi`'s offset is in force, `lo` having
/// another offset (one change between them; changes fall on whole seconds).
pub(super) fn change_between(tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>) -> DateTime<Utc> {
    let target = offset_at(tz, hi);
    let at = |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or(hi);
    let mut lo = lo.timestamp();
    let mut hi = hi.timestamp() + i64::from(hi.timestamp_subsec_nanos() > 0);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, at(mid)) == target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

/// Every instant in `(from, to]` where the zone's offset changes, in order.
/// Offsets are sampled daily (zones never change twice in a day).
pub(super) fn changes(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut lo = from;
    let mut lo_offset = offset_at(tz, lo);
    while lo < to {
        let hi = (lo + TimeDelta::days(1)).min(to);
        let hi_offset = offset_at(tz, hi);
        if hi_offset != lo_offset {
            out.push(change_between(tz, lo, hi));
        }
        lo = hi;
        lo_offset = hi_offset;
    }
    out
}

/// The instant of the wall-clock time `local` in `tz`. A time skipped by a
/// spring-forward gap is the first instant after the gap (02:30 in Paris on
/// the spring-forward day is 03:00 summer time); a repeated time is its
/// first occurrence for a [`Edge::Start`] and its second for an
/// [`Edge::End`].
pub(super) fn local_instant(tz: Tz, local: NaiveDateTime, edge: Edge) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            match edge {
                Edge::Start => a.min(b),
                Edge::End => a.max(b),
            }
        }
        LocalResult::None => gap_end(tz, local),
    }
}

/// The instant a gap that swallows `local` ends. Offsets lie within about
/// ±14 hours, so the change is within 16 hours of `local` read as UTC.
fn gap_end(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let guess = local.and_utc();
    let lo = guess - TimeDelta::hours(16);
    let hi = guess + TimeDelta::hours(16);
    if offset_at(tz, lo) == offset_at(tz, hi) {
        // Not a gap after all: read it with the offset around it.
        return guess - TimeDelta::seconds(i64::from(offset_at(tz, hi).0));
    }
    change_between(tz, lo, hi)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        local(y, m, d, h, min).and_utc()
    }

    #[test]
    fn paris_gap_and_fold() {
        let tz = Tz::Europe__Paris;
        // 2026-03-29: 02:00 → 03:00 at 01:00Z.
        for edge in [Edge::Start, Edge::End] {
            assert_eq!(
                local_instant(tz, local(2026, 3, 29, 2, 30), edge),
                utc(2026, 3, 29, 1, 0)
            );
            assert_eq!(
                local_instant(tz, local(2026, 3, 29, 2, 0), edge),
                utc(2026, 3, 29, 1, 0)
            );
        }
        assert_eq!(
            local_instant(tz, local(2026, 3, 29, 3, 0), Edge::Start),
            utc(2026, 3, 29, 1, 0)
        );
        // 2026-10-25: 03:00 → 02:00 at 01:00Z; 02:30 happens at 00:30Z and 01:30Z.
        assert_eq!(
            local_instant(tz, local(2026, 10, 25, 2, 30), Edge::Start),
            utc(2026, 10, 25, 0, 30)
        );
        assert_eq!(
            local_instant(tz, local(2026, 10, 25, 2, 30), Edge::End),
            utc(2026, 10, 25, 1, 30)
        );
    }

    #[test]
    fn changes_of_a_year() {
        let found = changes(
            Tz::Europe__Paris,
            utc(2026, 1, 1, 0, 0),
            utc(2027, 1, 1, 0, 0),
        );
        assert_eq!(found, [utc(2026, 3, 29, 1, 0), utc(2026, 10, 25, 1, 0)]);
        let found = changes(
            Tz::America__New_York,
            utc(2026, 1, 1, 0, 0),
            utc(2027, 1, 1, 0, 0),
        );
        // 2026-03-08 02:00 EST and 2026-11-01 02:00 EDT.
        assert_eq!(found, [utc(2026, 3, 8, 7, 0), utc(2026, 11, 1, 6, 0)]);
        assert!(
            changes(
                Tz::Asia__Tokyo,
                utc(2026, 1, 1, 0, 0),
                utc(2027, 1, 1, 0, 0)
            )
            .is_empty()
        );
    }
}
