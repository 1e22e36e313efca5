//! How customers reach the organization (chat, WhatsApp, contact form,
//! chatbot, FAQ, phone, e-mail), with weekly opening hours in the
//! organization's time zone, and whether each channel is open at a given
//! instant.
//!
//! Hours are wall-clock times in an IANA time zone (e.g. `Europe/Paris`), so
//! "9:00" stays 9:00 local across daylight-saving changes; the instants
//! returned are in UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Why opening hours or a time zone were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// A range must start before it ends, within one day (use
    /// [`OpeningHours::Always`] for around the clock).
    #[error("on {day}, an opening range must start before it ends")]
    StartNotBeforeEnd {
        /// The day of the faulty range.
        day: Weekday,
    },
    /// Two ranges of the same day overlap.
    #[error("on {day}, opening ranges overlap")]
    Overlap {
        /// The day of the overlapping ranges.
        day: Weekday,
    },
    /// Not an IANA time-zone name.
    #[error("unknown time zone {name:?}")]
    UnknownTimeZone {
        /// The name given.
        name: String,
    },
}

impl HoursError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            HoursError::StartNotBeforeEnd { .. } => "opening_range_start_not_before_end",
            HoursError::Overlap { .. } => "opening_ranges_overlap",
            HoursError::UnknownTimeZone { .. } => "unknown_time_zone",
        }
    }
}

/// An organization's time zone, by IANA name (`Europe/Paris`), with its
/// daylight-saving rules. (De)serializes as the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgTimeZone(Tz);

impl OrgTimeZone {
    /// Paris, the seed organization's zone.
    pub const PARIS: OrgTimeZone = OrgTimeZone(Tz::Europe__Paris);

    /// Reads an IANA name such as `Europe/Paris` (case-sensitive, as in the
    /// tz database).
    pub fn parse(name: &str) -> Result<Self, HoursError> {
        Tz::from_str(name)
            .map(OrgTimeZone)
            .map_err(|_| HoursError::UnknownTimeZone {
                name: name.to_owned(),
            })
    }

    /// Every name [`OrgTimeZone::parse`] takes (the IANA database's zones and
    /// links, as spelled there).
    pub fn names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The zone's rules, for converting instants.
    pub fn tz(&self) -> Tz {
        self.0
    }
}

impl fmt::Display for OrgTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for OrgTimeZone {
    type Error = HoursError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrgTimeZone::parse(&value)
    }
}

impl From<OrgTimeZone> for String {
    fn from(value: OrgTimeZone) -> Self {
        value.name().to_owned()
    }
}

/// One day's opening ranges: `[start, end)` wall-clock times.
pub type DayRanges = Vec<(NaiveTime, NaiveTime)>;

/// Opening hours per weekday, Monday first. Each range lies within one day
/// and starts before it ends; ranges of a day do not overlap (they may
/// touch: 9–12 and 12–14 read as 9–14). Kept sorted. A day without ranges
/// is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "[DayRanges; 7]", into = "[DayRanges; 7]")]
pub struct WeeklyHours {
    days: [DayRanges; 7],
}

impl WeeklyHours {
    /// Checks and sorts the ranges of each day (index 0 is Monday).
    pub fn new(mut days: [DayRanges; 7]) -> Result<Self, HoursError> {
        for (index, ranges) in days.iter_mut().enumerate() {
            let day = weekday_from_index(index);
            if ranges.iter().any(|(start, end)| start >= end) {
                return Err(HoursError::StartNotBeforeEnd { day });
            }
            ranges.sort();
            if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
                return Err(HoursError::Overlap { day });
            }
        }
        Ok(Self { days })
    }

    /// Builds the week from `(day, start, end)` triples; days not listed
    /// are closed.
    pub fn from_ranges(
        ranges: impl IntoIterator<Item = (Weekday, NaiveTime, NaiveTime)>,
    ) -> Result<Self, HoursError> {
        let mut days: [DayRanges; 7] = Default::default();
        for (day, start, end) in ranges {
            days[day.num_days_from_monday() as usize].push((start, end));
        }
        Self::new(days)
    }

    /// The ranges of `day`, sorted.
    pub fn day(&self, day: Weekday) -> &[(NaiveTime, NaiveTime)] {
        &self.days[day.num_days_from_monday() as usize]
    }

    /// Every day's ranges, Monday first.
    pub fn days(&self) -> &[DayRanges; 7] {
        &self.days
    }
}

impl TryFrom<[DayRanges; 7]> for WeeklyHours {
    type Error = HoursError;
    fn try_from(days: [DayRanges; 7]) -> Result<Self, Self::Error> {
        WeeklyHours::new(days)
    }
}

impl From<WeeklyHours> for [DayRanges; 7] {
    fn from(value: WeeklyHours) -> Self {
        value.days
    }
}

fn weekday_from_index(index: usize) -> Weekday {
    const WEEK: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    WEEK[index % 7]
}

/// When a channel is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpeningHours {
    /// Around the clock, every day (self-service: chatbot, FAQ).
    Always,
    /// On weekly hours in the organization's time zone.
    Weekly(WeeklyHours),
}

/// The kind of a contact channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Live chat with an adviser.
    Chat,
    /// WhatsApp with an adviser.
    Whatsapp,
    /// A contact form handled during opening hours.
    ContactForm,
    /// An automated chatbot.
    Chatbot,
    /// Frequently asked questions.
    Faq,
    /// A phone line.
    Phone,
    /// An e-mail address.
    Email,
}

impl ChannelKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Chat => "chat",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::ContactForm => "contact_form",
            ChannelKind::Chatbot => "chatbot",
            ChannelKind::Faq => "faq",
            ChannelKind::Phone => "phone",
            ChannelKind::Email => "email",
        }
    }
}

/// One way to reach the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// What it is.
    pub kind: ChannelKind,
    /// The name shown to customers.
    pub label: String,
    /// When it is available.
    pub hours: OpeningHours,
}

/// Whether a channel is open at an instant, and when that changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// Open at the instant asked about.
    pub open_now: bool,
    /// When closed: the next instant it opens (`None` if it never opens).
    /// `None` when open.
    pub next_opening: Option<DateTime<Utc>>,
    /// When open on weekly hours: the instant it closes (touching ranges are
    /// merged). `None` when closed or always open.
    pub closes_at: Option<DateTime<Utc>>,
}

/// The UTC instant of a wall-clock time in `tz`. A time that occurs twice
/// (autumn fold) is its first occurrence; a time skipped by a spring-forward
/// gap is read with the offset in force before the gap, which lands as far
/// after the gap starts as the time was (02:30 in Paris on a spring-forward
/// day is 03:30 summer time).
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // Offsets change at most a few hours apart from the local time, so
            // the offset a day earlier is the one before the gap.
            let before = local - TimeDelta::days(1);
            let offset = tz.offset_from_utc_datetime(&before).fix().local_minus_utc();
            (local - TimeDelta::seconds(i64::from(offset))).and_utc()
        }
    }
}

/// Every opening interval, in UTC, of the local days from `from` for `count`
/// days, in chronological order.
fn intervals(
    hours: &WeeklyHours,
    tz: Tz,
    from: NaiveDate,
    count: u64,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    for offset in 0..count {
        let Some(day) = from.checked_add_days(Days::new(offset)) else {
            break;
        };
        for (start, end) in hours.day(day.weekday()) {
            let start = local_to_utc(tz, day.and_time(*start));
            let end = local_to_utc(tz, day.and_time(*end));
            if start < end {
                out.push((start, end));
            }
        }
    }
    out.sort();
    out
}

/// Whether a channel with `hours` is open at `now` in the organization's
/// time zone `tz`, when it next opens if closed, and when it closes if open.
///
/// The next opening is always found when the channel opens at least once a
/// week; a week without any range gives `None`.
pub fn status(hours: &OpeningHours, tz: OrgTimeZone, now: DateTime<Utc>) -> ChannelStatus {
    let weekly = match hours {
        OpeningHours::Always => {
            return ChannelStatus {
                open_now: true,
                next_opening: None,
                closes_at: None,
            };
        }
        OpeningHours::Weekly(weekly) => weekly,
    };
    let tz = tz.tz();
    let today = now.with_timezone(&tz).date_naive();
    // From yesterday (a range that started before a DST shift) to a week and
    // a day ahead (the same weekday next week, whatever the hour).
    let from = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    let list = intervals(weekly, tz, from, 10);

    if let Some(k) = list.iter().position(|(s, e)| *s <= now && now < *e) {
        let mut closes = list[k].1;
        for (start, end) in &list[k + 1..] {
            if *start <= closes {
                closes = closes.max(*end);
            } else {
                break;
            }
        }
        return ChannelStatus {
            open_now: true,
            next_opening: None,
            closes_at: Some(closes),
        };
    }
    ChannelStatus {
        open_now: false,
        next_opening: list.iter().map(|(s, _)| *s).find(|s| *s > now),
        closes_at: None,
    }
}

/// The organization's contact channels and the zone their hours are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChannels {
    /// The zone of every channel's hours.
    pub time_zone: OrgTimeZone,
    /// The channels, in display order.
    pub channels: Vec<Channel>,
}

impl ContactChannels {
    /// Each channel with its status at `now`.
    pub fn statuses(&self, now: DateTime<Utc>) -> Vec<(&Channel, ChannelStatus)> {
        self.channels
            .iter()
            .map(|c| (c, status(&c.hours, self.time_zone, now)))
            .collect()
    }
}

fn hm(hour: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// The advisers' hours of the seed: Monday to Friday 9:00–20:00, Saturday
/// 9:00–18:00, closed on Sunday.
pub fn adviser_hours() -> WeeklyHours {
    let weekdays = vec![(hm(9), hm(20))];
    WeeklyHours {
        days: [
            weekdays.clone(),
            weekdays.clone(),
            weekdays.clone(),
            weekdays.clone(),
            weekdays,
            vec![(hm(9), hm(18))],
            Vec::new(),
        ],
    }
}

/// The seed's channels, in Europe/Paris: chat and WhatsApp with advisers
/// and the contact form (handled the same day) on [`adviser_hours`];
/// chatbot and FAQ around the clock.
pub fn seed_defaults() -> ContactChannels {
    let advisers = || OpeningHours::Weekly(adviser_hours());
    let channel = |kind, label: &str, hours| Channel {
        kind,
        label: label.to_owned(),
        hours,
    };
    ContactChannels {
        time_zone: OrgTimeZone::PARIS,
        channels: vec![
            channel(ChannelKind::Chat, "Chat avec un conseiller", advisers()),
            channel(ChannelKind::Whatsapp, "WhatsApp", advisers()),
            channel(
                ChannelKind::ContactForm,
                "Formulaire de contact",
                advisers(),
            ),
            channel(
                ChannelKind::Chatbot,
                "Assistant virtuel",
                OpeningHours::Always,
            ),
            channel(ChannelKind::Faq, "FAQ", OpeningHours::Always),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn advisers() -> OpeningHours {
        OpeningHours::Weekly(adviser_hours())
    }

    const PARIS: OrgTimeZone = OrgTimeZone::PARIS;

    #[test]
    fn open_on_a_weekday_in_winter_and_summer_local_time() {
        // Tuesday 2026-01-13, 8:30 UTC = 9:30 Paris (UTC+1).
        let s = status(&advisers(), PARIS, utc(2026, 1, 13, 8, 30));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 1, 13, 19, 0)));
        assert_eq!(s.next_opening, None);
        // 7:59 UTC = 8:59 Paris: closed, opens at 8:00 UTC.
        let s = status(&advisers(), PARIS, utc(2026, 1, 13, 7, 59));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 1, 13, 8, 0)));
        assert_eq!(s.closes_at, None);
        // Summer (UTC+2): Tuesday 2026-07-14 7:30 UTC = 9:30 Paris.
        let s = status(&advisers(), PARIS, utc(2026, 7, 14, 7, 30));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 7, 14, 18, 0)));
        // Opening instant is inclusive, closing exclusive.
        assert!(status(&advisers(), PARIS, utc(2026, 7, 14, 7, 0)).open_now);
        let closed = status(&advisers(), PARIS, utc(2026, 7, 14, 18, 0));
        assert!(!closed.open_now);
        assert_eq!(closed.next_opening, Some(utc(2026, 7, 15, 7, 0)));
    }

    #[test]
    fn closed_on_sunday_and_saturday_evening_until_monday() {
        // Saturday 2026-01-17 at 17:30 Paris: open until 18:00.
        let s = status(&advisers(), PARIS, utc(2026, 1, 17, 16, 30));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 1, 17, 17, 0)));
        // Saturday 18:30 Paris: closed, next Monday 9:00 Paris.
        let s = status(&advisers(), PARIS, utc(2026, 1, 17, 17, 30));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 1, 19, 8, 0)));
        // Sunday noon.
        let s = status(&advisers(), PARIS, utc(2026, 1, 18, 11, 0));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 1, 19, 8, 0)));
        // Sunday 23:30 UTC is already Monday 0:30 in Paris.
        let s = status(&advisers(), PARIS, utc(2026, 1, 18, 23, 30));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 1, 19, 8, 0)));
    }

    #[test]
    fn next_opening_follows_the_spring_daylight_saving_change() {
        // Clocks go forward on Sunday 2026-03-29 at 2:00 Paris.
        // Saturday 28 at 19:00 Paris (18:00 UTC): closed; Monday 30 at 9:00
        // summer time is 7:00 UTC, not 8:00.
        let s = status(&advisers(), PARIS, utc(2026, 3, 28, 18, 0));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 3, 30, 7, 0)));
        // Saturday at 17:30 UTC (18:30 Paris): already closed (winter time).
        assert!(!status(&advisers(), PARIS, utc(2026, 3, 28, 17, 30)).open_now);
        // Monday 30 at 7:30 UTC (9:30 Paris) open, closes at 18:00 UTC.
        let s = status(&advisers(), PARIS, utc(2026, 3, 30, 7, 30));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 3, 30, 18, 0)));
    }

    #[test]
    fn next_opening_follows_the_autumn_daylight_saving_change() {
        // Clocks go back on Sunday 2026-10-25 at 3:00 Paris.
        // Saturday 24 at 18:30 Paris (16:30 UTC): next Monday 9:00 winter
        // time is 8:00 UTC.
        let s = status(&advisers(), PARIS, utc(2026, 10, 24, 16, 30));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 10, 26, 8, 0)));
        // Saturday 24 at 17:30 Paris = 15:30 UTC (summer time): open.
        let s = status(&advisers(), PARIS, utc(2026, 10, 24, 15, 30));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 10, 24, 16, 0)));
    }

    #[test]
    fn hours_inside_the_gap_or_the_fold_resolve_sensibly() {
        // A (made-up) night channel on Sundays 2:30–4:00.
        let night = OpeningHours::Weekly(
            WeeklyHours::from_ranges([(Weekday::Sun, t(2, 30), t(4, 0))]).unwrap(),
        );
        // Spring: 2:30 does not exist; it opens at 3:30 summer time (1:30 UTC)
        // and closes at 4:00 summer time (2:00 UTC).
        let s = status(&night, PARIS, utc(2026, 3, 29, 0, 0));
        assert_eq!(s.next_opening, Some(utc(2026, 3, 29, 1, 30)));
        let s = status(&night, PARIS, utc(2026, 3, 29, 1, 45));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 3, 29, 2, 0)));
        // Autumn: 2:30 happens twice; it opens at the first (0:30 UTC) and
        // closes at 4:00 winter time (3:00 UTC).
        let s = status(&night, PARIS, utc(2026, 10, 25, 0, 0));
        assert_eq!(s.next_opening, Some(utc(2026, 10, 25, 0, 30)));
        let s = status(&night, PARIS, utc(2026, 10, 25, 1, 45));
        assert!(s.open_now);
        assert_eq!(s.closes_at, Some(utc(2026, 10, 25, 3, 0)));
    }

    #[test]
    fn always_open_channels_have_no_closing() {
        let s = status(&OpeningHours::Always, PARIS, utc(2026, 1, 18, 3, 0));
        assert_eq!(
            s,
            ChannelStatus {
                open_now: true,
                next_opening: None,
                closes_at: None
            }
        );
    }

    #[test]
    fn touching_ranges_merge_and_never_open_has_no_next_opening() {
        let split = OpeningHours::Weekly(
            WeeklyHours::from_ranges([
                (Weekday::Mon, t(12, 0), t(14, 0)),
                (Weekday::Mon, t(9, 0), t(12, 0)),
                (Weekday::Mon, t(15, 0), t(16, 0)),
            ])
            .unwrap(),
        );
        // Monday 2026-01-12 10:00 Paris.
        let s = status(&split, PARIS, utc(2026, 1, 12, 9, 0));
        assert_eq!(s.closes_at, Some(utc(2026, 1, 12, 13, 0)));
        let s = status(&split, PARIS, utc(2026, 1, 12, 13, 30));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 1, 12, 14, 0)));
        // After Monday's last range: next Monday.
        let s = status(&split, PARIS, utc(2026, 1, 12, 15, 0));
        assert_eq!(s.next_opening, Some(utc(2026, 1, 19, 8, 0)));

        let never = OpeningHours::Weekly(WeeklyHours::new(Default::default()).unwrap());
        let s = status(&never, PARIS, utc(2026, 1, 12, 9, 0));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, None);
    }

    #[test]
    fn other_time_zones_apply_their_own_rules() {
        let ny = OrgTimeZone::parse("America/New_York").unwrap();
        // Tuesday 2026-01-13 13:59 UTC = 8:59 New York (UTC−5).
        let s = status(&advisers(), ny, utc(2026, 1, 13, 13, 59));
        assert!(!s.open_now);
        assert_eq!(s.next_opening, Some(utc(2026, 1, 13, 14, 0)));
    }

    #[test]
    fn hours_are_validated() {
        let err = WeeklyHours::from_ranges([(Weekday::Tue, t(10, 0), t(9, 0))]).unwrap_err();
        assert_eq!(err, HoursError::StartNotBeforeEnd { day: Weekday::Tue });
        assert_eq!(err.code(), "opening_range_start_not_before_end");
        let err = WeeklyHours::from_ranges([(Weekday::Wed, t(9, 0), t(9, 0))]).unwrap_err();
        assert_eq!(err.code(), "opening_range_start_not_before_end");
        let err = WeeklyHours::from_ranges([
            (Weekday::Sat, t(9, 0), t(12, 0)),
            (Weekday::Sat, t(11, 0), t(13, 0)),
        ])
        .unwrap_err();
        assert_eq!(err, HoursError::Overlap { day: Weekday::Sat });
        assert_eq!(err.code(), "opening_ranges_overlap");
        let err = OrgTimeZone::parse("Europe/Pariss").unwrap_err();
        assert_eq!(err.code(), "unknown_time_zone");
        assert_eq!(
            OrgTimeZone::parse("Europe/Paris").unwrap(),
            OrgTimeZone::PARIS
        );
        assert_eq!(OrgTimeZone::PARIS.to_string(), "Europe/Paris");
    }

    #[test]
    fn seed_defaults_match_the_source_document() {
        let seed = seed_defaults();
        assert_eq!(seed.time_zone.name(), "Europe/Paris");
        let kinds: Vec<&str> = seed.channels.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["chat", "whatsapp", "contact_form", "chatbot", "faq"]
        );
        let hours = adviser_hours();
        for day in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ] {
            assert_eq!(hours.day(day), [(t(9, 0), t(20, 0))]);
        }
        assert_eq!(hours.day(Weekday::Sat), [(t(9, 0), t(18, 0))]);
        assert!(hours.day(Weekday::Sun).is_empty());
        assert_eq!(WeeklyHours::new(hours.days().clone()), Ok(hours));

        // Sunday 2026-01-18 noon: only the chatbot and the FAQ are open.
        let open: Vec<ChannelKind> = seed
            .statuses(utc(2026, 1, 18, 11, 0))
            .into_iter()
            .filter(|(_, s)| s.open_now)
            .map(|(c, _)| c.kind)
            .collect();
        assert_eq!(open, [ChannelKind::Chatbot, ChannelKind::Faq]);
    }

    #[test]
    fn settings_round_trip_through_json_and_are_checked_on_read() {
        let seed = seed_defaults();
        let json = serde_json::to_value(&seed).unwrap();
        assert_eq!(json["time_zone"], "Europe/Paris");
        assert_eq!(json["channels"][0]["hours"]["weekly"][0][0][0], "09:00:00");
        assert_eq!(json["channels"][3]["hours"], "always");
        let back: ContactChannels = serde_json::from_value(json).unwrap();
        assert_eq!(back, seed);

        let bad = serde_json::json!([[["10:00:00", "09:00:00"]], [], [], [], [], [], []]);
        assert!(serde_json::from_value::<WeeklyHours>(bad).is_err());
        assert!(serde_json::from_value::<OrgTimeZone>(serde_json::json!("Mars/Olympus")).is_err());
    }
}
