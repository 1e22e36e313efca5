//! The iCalendar (RFC 5545) invitation of a booking, attached to its e-mails
//! and served as `calendar.ics`: METHOD:REQUEST when made or moved,
//! METHOD:CANCEL when cancelled, always with the same UID and a growing
//! SEQUENCE, times written in the organization's zone with its VTIMEZONE.
//!
//! The `icalendar` crate writes the event and every content line (escaping,
//! folding at 75 octets, CRLF). It has no VTIMEZONE, and its generic
//! components stamp every component with a DTSTAMP from the clock and a
//! random UID, which a VTIMEZONE must not carry; so the VTIMEZONE's
//! `BEGIN`/`END` lines are written here, its properties still by the crate.

use chrono::{DateTime, Datelike, LocalResult, TimeDelta, TimeZone, Utc};
use chrono_tz::{OffsetName, Tz};
use icalendar::{
    Attendee, CalendarDateTime, Component, Event, EventLike, EventStatus, Property, Role,
};

use super::zone;

/// The PRODID of Guichet's calendars.
pub const PRODID: &str = "-//Guichet//Bookings//EN";

/// The calendar-address of an attendee without e-mail, as calendar servers
/// write it.
const NO_MAIL: &str = "invalid:nomail";

/// Whether the invitation sets the event or withdraws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarMethod {
    /// The booking is made or moved (`METHOD:REQUEST`, `STATUS:CONFIRMED`).
    Request,
    /// The booking is cancelled (`METHOD:CANCEL`, `STATUS:CANCELLED`).
    Cancel,
}

impl CalendarMethod {
    /// The METHOD value.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarMethod::Request => "REQUEST",
            CalendarMethod::Cancel => "CANCEL",
        }
    }
}

/// Everything an invitation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarInvite {
    /// Stable per booking, e.g. `<booking id>@<org slug>.guichet`.
    pub uid: String,
    /// 0 at creation, +1 at each reschedule or cancellation.
    pub sequence: u32,
    /// Request or cancel.
    pub method: CalendarMethod,
    /// When this version was made (DTSTAMP).
    pub stamp: DateTime<Utc>,
    /// The booking's start.
    pub start: DateTime<Utc>,
    /// The booking's end.
    pub end: DateTime<Utc>,
    /// The organization's zone: DTSTART/DTEND are written in it, with
    /// `TZID=<name>`.
    pub tz: Tz,
    /// The event's title (the service).
    pub summary: String,
    /// Longer text, if any.
    pub description: Option<String>,
    /// Where, if known.
    pub location: Option<String>,
    /// The business's name.
    pub organizer_name: String,
    /// The business's e-mail address.
    pub organizer_email: String,
    /// The customer's name.
    pub attendee_name: String,
    /// The customer's e-mail address, when known.
    pub attendee_email: Option<String>,
}

/// The invitation as an iCalendar file: a VCALENDAR with PRODID, VERSION,
/// CALSCALE and METHOD, the VTIMEZONE of `invite.tz` (its changes from the
/// one in force at the start of the event's year to the end of the year it
/// ends in), and the VEVENT. Lines end with CRLF and are folded at 75
/// octets; the same invite always gives the same text.
pub fn ics(invite: &CalendarInvite) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("BEGIN:VCALENDAR\r\n");
    push(&mut out, Property::new("PRODID", PRODID));
    push(&mut out, Property::new("VERSION", "2.0"));
    push(&mut out, Property::new("CALSCALE", "GREGORIAN"));
    push(&mut out, Property::new("METHOD", invite.method.as_str()));
    push_timezone(&mut out, invite.tz, invite.start, invite.end);
    if let Ok(event) = event(invite).try_into_string() {
        out.push_str(&event);
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// Appends one content line, escaped and folded by the crate.
fn push(out: &mut String, property: Property) {
    let line: Result<String, _> = property.try_into();
    if let Ok(line) = line {
        out.push_str(&line);
    }
}

fn event(invite: &CalendarInvite) -> Event {
    let mut event = Event::new();
    event
        .uid(&text(&invite.uid))
        .sequence(invite.sequence)
        .timestamp(invite.stamp)
        .starts(local_time(invite.start, invite.tz))
        .ends(local_time(invite.end, invite.tz))
        .summary(&text(&invite.summary))
        .status(match invite.method {
            CalendarMethod::Request => EventStatus::Confirmed,
            CalendarMethod::Cancel => EventStatus::Cancelled,
        });
    if let Some(description) = &invite.description {
        event.description(&text(description));
    }
    if let Some(location) = &invite.location {
        event.location(&text(location));
    }
    event.append_property(
        Property::new("ORGANIZER", mailto(&invite.organizer_email))
            .add_parameter("CN", &parameter(&invite.organizer_name))
            .done(),
    );
    let address = match &invite.attendee_email {
        Some(email) => mailto(email),
        None => NO_MAIL.to_owned(),
    };
    event.attendee(
        Attendee::new(address)
            .cn(parameter(&invite.attendee_name))
            .role(Role::ReqParticipant)
            .rsvp(false),
    );
    event.done()
}

/// `instant` as a local time with its TZID; as UTC in the one case where the
/// local time would read as another instant (the second pass of a repeated
/// autumn hour, which readers take as the first).
fn local_time(instant: DateTime<Utc>, tz: Tz) -> CalendarDateTime {
    let local = instant.with_timezone(&tz).naive_local();
    match tz.from_local_datetime(&local) {
        LocalResult::Ambiguous(first, _) if first.with_timezone(&Utc) != instant => {
            CalendarDateTime::Utc(instant)
        }
        _ => CalendarDateTime::WithTimezone {
            date_time: local,
            tzid: tz.name().to_owned(),
        },
    }
}

/// A text value: line breaks as LF (the crate writes them `\n`), other
/// control characters dropped.
fn text(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect()
}

/// A parameter value (a CN): no double quote (it cannot be escaped there),
/// no control character; the crate quotes values with `:`, `;` or `,`.
fn parameter(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn mailto(email: &str) -> String {
    let email: String = email
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    format!("mailto:{email}")
}

/// One STANDARD or DAYLIGHT observance.
struct Observance {
    daylight: bool,
    /// Local time of the change, on the clock before it.
    onset: chrono::NaiveDateTime,
    from: i32,
    to: i32,
    name: Option<String>,
}

fn observance(tz: Tz, change: DateTime<Utc>) -> Observance {
    let (from, _) = zone::offset_at(tz, change - TimeDelta::seconds(1));
    let (to, dst) = zone::offset_at(tz, change);
    Observance {
        daylight: dst != 0,
        onset: (change + TimeDelta::seconds(i64::from(from))).naive_utc(),
        from,
        to,
        name: abbreviation(tz, change),
    }
}

fn abbreviation(tz: Tz, at: DateTime<Utc>) -> Option<String> {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .abbreviation()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// The VTIMEZONE of `tz` around an event: the observance in force on
/// 1 January of the start's year, then every change until the end of the
/// end's year. A zone without a change in the year before has one
/// observance since 1970 with its current offset.
fn push_timezone(out: &mut String, tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) {
    let year_start = |year: i32| Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single();
    let (Some(from), Some(to)) = (
        year_start(start.with_timezone(&tz).year()),
        year_start(end.max(start).with_timezone(&tz).year() + 1),
    ) else {
        return;
    };
    let mut observances = Vec::new();
    match zone::changes(tz, from - TimeDelta::days(400), from).last() {
        Some(&change) => observances.push(observance(tz, change)),
        None => {
            let (offset, dst) = zone::offset_at(tz, from);
            observances.push(Observance {
                daylight: dst != 0,
                onset: chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .unwrap_or_default(),
                from: offset,
                to: offset,
                name: abbreviation(tz, from),
            });
        }
    }
    observances.extend(
        zone::changes(tz, from, to)
            .into_iter()
            .map(|change| observance(tz, change)),
    );

    out.push_str("BEGIN:VTIMEZONE\r\n");
    push(out, Property::new("TZID", tz.name()));
    for o in observances {
        let kind = if o.daylight { "DAYLIGHT" } else { "STANDARD" };
        out.push_str(&format!("BEGIN:{kind}\r\n"));
        push(
            out,
            Property::new("DTSTART", o.onset.format("%Y%m%dT%H%M%S").to_string()),
        );
        push(out, Property::new("TZOFFSETFROM", utc_offset(o.from)));
        push(out, Property::new("TZOFFSETTO", utc_offset(o.to)));
        if let Some(name) = o.name {
            push(out, Property::new("TZNAME", name));
        }
        out.push_str(&format!("END:{kind}\r\n"));
    }
    out.push_str("END:VTIMEZONE\r\n");
}

/// An RFC 5545 UTC-OFFSET: `+0100`, `-0430`, `+001521` with seconds.
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if sec == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{sec:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn invite(start: DateTime<Utc>) -> CalendarInvite {
        CalendarInvite {
            uid: "bkg_01HXYZ@salon-lumiere.guichet".into(),
            sequence: 0,
            method: CalendarMethod::Request,
            stamp: utc(2026, 5, 2, 14, 3),
            start,
            end: start + TimeDelta::minutes(60),
            tz: Tz::Europe__Paris,
            summary: "Coupe et brushing".into(),
            description: None,
            location: Some("12 rue des Lilas, 75011 Paris".into()),
            organizer_name: "Salon Lumière".into(),
            organizer_email: "rdv@salon-lumiere.fr".into(),
            attendee_name: "Camille Martin".into(),
            attendee_email: Some("camille@example.org".into()),
        }
    }

    fn parse(text: &str) -> icalendar::Calendar {
        text.parse().unwrap()
    }

    fn the_event(calendar: &icalendar::Calendar) -> &Event {
        let mut events = calendar.events();
        let event = events.next().unwrap();
        assert!(events.next().is_none());
        event
    }

    /// The VTIMEZONE's TZID and `(kind, DTSTART, TZOFFSETFROM,
    /// TZOFFSETTO)` of each observance, read with the crate's parser.
    fn timezone(text: &str) -> (String, Vec<(String, String, String, String)>) {
        let unfolded = icalendar::parser::unfold(text);
        let parsed = icalendar::parser::read_calendar(&unfolded).unwrap();
        let zones: Vec<_> = parsed
            .components
            .iter()
            .filter(|c| c.name == "VTIMEZONE")
            .collect();
        assert_eq!(zones.len(), 1);
        let value = |c: &icalendar::parser::Component, key: &str| {
            c.find_prop(key).unwrap().val.as_str().to_owned()
        };
        let observances = zones[0]
            .components
            .iter()
            .map(|o| {
                (
                    o.name.as_str().to_owned(),
                    value(o, "DTSTART"),
                    value(o, "TZOFFSETFROM"),
                    value(o, "TZOFFSETTO"),
                )
            })
            .collect();
        (value(zones[0], "TZID"), observances)
    }

    fn observances(text: &str) -> Vec<(String, String, String, String)> {
        timezone(text).1
    }

    fn offset_seconds(offset: &str) -> i64 {
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits = &offset[1..];
        let h: i64 = digits[0..2].parse().unwrap();
        let m: i64 = digits[2..4].parse().unwrap();
        sign * (h * 3600 + m * 60)
    }

    /// What a calendar client does with `DTSTART;TZID=...`: the local time
    /// read with the offset of the latest observance begun by then. Returns
    /// the instant and that offset.
    fn resolve(text: &str, start: CalendarDateTime) -> (DateTime<Utc>, String) {
        let CalendarDateTime::WithTimezone { date_time, tzid } = start else {
            panic!("not a local time: {start:?}");
        };
        let (zone_id, observances) = timezone(text);
        assert_eq!(zone_id, tzid);
        let local = date_time.format("%Y%m%dT%H%M%S").to_string();
        let (_, _, _, to) = observances
            .into_iter()
            .filter(|(_, onset, _, _)| *onset <= local)
            .max_by(|a, b| a.1.cmp(&b.1))
            .unwrap();
        let instant = date_time.and_utc() - TimeDelta::seconds(offset_seconds(&to));
        (instant, to)
    }

    fn start_of(event: &Event) -> CalendarDateTime {
        match event.get_start().unwrap() {
            icalendar::DatePerhapsTime::DateTime(dt) => dt,
            other => panic!("a date: {other:?}"),
        }
    }

    fn end_of(event: &Event) -> CalendarDateTime {
        match event.get_end().unwrap() {
            icalendar::DatePerhapsTime::DateTime(dt) => dt,
            other => panic!("a date: {other:?}"),
        }
    }

    fn local(text: &str) -> CalendarDateTime {
        CalendarDateTime::WithTimezone {
            date_time: chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S").unwrap(),
            tzid: "Europe/Paris".into(),
        }
    }

    #[test]
    fn a_summer_booking_in_paris_reads_back() {
        let invite = invite(utc(2026, 7, 15, 7, 0));
        let text = ics(&invite);
        let calendar = parse(&text);
        assert_eq!(calendar.property_value("VERSION"), Some("2.0"));
        assert_eq!(calendar.property_value("PRODID"), Some(PRODID));
        assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));

        let event = the_event(&calendar);
        assert_eq!(event.get_uid(), Some("bkg_01HXYZ@salon-lumiere.guichet"));
        assert_eq!(event.get_sequence(), Some(0));
        assert_eq!(event.get_timestamp(), Some(invite.stamp));
        assert_eq!(event.get_status(), Some(EventStatus::Confirmed));
        assert_eq!(event.get_summary(), Some("Coupe et brushing"));
        assert_eq!(event.get_location(), Some("12 rue des Lilas, 75011 Paris"));
        assert_eq!(event.get_description(), None);
        // 09:00 local, summer time.
        assert_eq!(start_of(event), local("20260715T090000"));
        assert_eq!(end_of(event), local("20260715T100000"));
        assert!(text.contains("\r\nDTSTART;TZID=Europe/Paris:20260715T090000\r\n"));
        assert_eq!(
            resolve(&text, start_of(event)),
            (invite.start, "+0200".to_owned())
        );
        assert_eq!(resolve(&text, end_of(event)).0, invite.end);

        let organizer = event.properties().get("ORGANIZER").unwrap();
        assert_eq!(organizer.value(), "mailto:rdv@salon-lumiere.fr");
        assert_eq!(
            organizer.params().get("CN").map(|p| p.value()),
            Some("Salon Lumière")
        );
        let attendees = event.get_attendees();
        assert_eq!(attendees.len(), 1);
        assert_eq!(attendees[0].cal_address, "mailto:camille@example.org");
        assert_eq!(attendees[0].cn.as_deref(), Some("Camille Martin"));

        // The year's observances, from the one in force on 1 January.
        let s = |v: &str| v.to_owned();
        assert_eq!(
            observances(&text),
            [
                (s("STANDARD"), s("20251026T030000"), s("+0200"), s("+0100")),
                (s("DAYLIGHT"), s("20260329T020000"), s("+0100"), s("+0200")),
                (s("STANDARD"), s("20261025T030000"), s("+0200"), s("+0100")),
            ]
        );
        let names: Vec<&str> = text
            .split("\r\n")
            .filter_map(|l| l.strip_prefix("TZNAME:"))
            .collect();
        assert_eq!(names, ["CET", "CEST", "CET"]);
    }

    #[test]
    fn a_winter_booking_in_paris_is_nine_o_clock_too() {
        let invite = invite(utc(2026, 1, 20, 8, 0));
        let text = ics(&invite);
        let calendar = parse(&text);
        let event = the_event(&calendar);
        assert_eq!(start_of(event), local("20260120T090000"));
        assert_eq!(
            resolve(&text, start_of(event)),
            (invite.start, "+0100".to_owned())
        );
        // Late December runs into the next year: its changes come along.
        let mut late = invite.clone();
        late.start = utc(2026, 12, 31, 22, 30);
        late.end = utc(2026, 12, 31, 23, 30);
        let text = ics(&late);
        let calendar = parse(&text);
        let event = the_event(&calendar);
        assert_eq!(end_of(event), local("20270101T003000"));
        assert_eq!(resolve(&text, end_of(event)).0, late.end);
        assert_eq!(observances(&text).len(), 5);
    }

    #[test]
    fn a_cancellation_keeps_the_uid_and_moves_the_sequence() {
        let mut cancel = invite(utc(2026, 7, 15, 7, 0));
        cancel.method = CalendarMethod::Cancel;
        cancel.sequence = 2;
        let text = ics(&cancel);
        let calendar = parse(&text);
        assert_eq!(calendar.property_value("METHOD"), Some("CANCEL"));
        let event = the_event(&calendar);
        assert_eq!(event.get_uid(), Some("bkg_01HXYZ@salon-lumiere.guichet"));
        assert_eq!(event.get_sequence(), Some(2));
        assert_eq!(event.get_status(), Some(EventStatus::Cancelled));
        assert!(text.contains("\r\nSTATUS:CANCELLED\r\n"));
    }

    #[test]
    fn text_is_escaped_lines_are_folded_and_crlf() {
        let mut invite = invite(utc(2026, 7, 15, 7, 0));
        invite.summary = r"Soin; coupe, brushing \ couleur".into();
        let description = "Merci d'arriver cinq minutes en avance ; apportez votre carte \
             de fidélité, s'il vous plaît.\r\nÀ bientôt au salon — l'équipe 💇";
        invite.description = Some(description.into());
        invite.attendee_name = "Martin, \"Camille\"\u{7}".into();
        let text = ics(&invite);

        assert!(text.ends_with("END:VCALENDAR\r\n"));
        let body = text.strip_suffix("\r\n").unwrap();
        for line in body.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        }
        assert!(
            body.split("\r\n").any(|l| l.starts_with(' ')),
            "nothing folded"
        );
        assert!(text.contains(r"SUMMARY:Soin\; coupe\, brushing \\ couleur"));

        let calendar = parse(&text);
        let event = the_event(&calendar);
        assert_eq!(
            event.get_summary(),
            Some(r"Soin; coupe, brushing \ couleur")
        );
        assert_eq!(
            event.get_description(),
            Some(description.replace("\r\n", "\n").as_str())
        );
        assert_eq!(
            event.get_attendees()[0].cn.as_deref(),
            Some("Martin, 'Camille' ")
        );
    }

    #[test]
    fn an_attendee_without_e_mail() {
        let mut invite = invite(utc(2026, 7, 15, 7, 0));
        invite.attendee_email = None;
        let calendar = parse(&ics(&invite));
        let attendees = the_event(&calendar).get_attendees();
        assert_eq!(attendees[0].cal_address, "invalid:nomail");
        assert_eq!(attendees[0].cn.as_deref(), Some("Camille Martin"));
    }

    #[test]
    fn other_zones_write_their_own_rules() {
        let mut ny = invite(utc(2026, 7, 15, 13, 0));
        ny.tz = Tz::America__New_York;
        let text = ics(&ny);
        assert!(text.contains("\r\nDTSTART;TZID=America/New_York:20260715T090000\r\n"));
        let calendar = parse(&text);
        let s = |v: &str| v.to_owned();
        assert_eq!(
            observances(&text),
            [
                (s("STANDARD"), s("20251102T020000"), s("-0400"), s("-0500")),
                (s("DAYLIGHT"), s("20260308T020000"), s("-0500"), s("-0400")),
                (s("STANDARD"), s("20261101T020000"), s("-0400"), s("-0500")),
            ]
        );
        let event = the_event(&calendar);
        let CalendarDateTime::WithTimezone { tzid, .. } = start_of(event) else {
            panic!()
        };
        assert_eq!(tzid, "America/New_York");

        // A zone without daylight saving: one STANDARD observance.
        let mut tokyo = invite(utc(2026, 7, 15, 0, 0));
        tokyo.tz = Tz::Asia__Tokyo;
        let text = ics(&tokyo);
        assert!(text.contains("\r\nDTSTART;TZID=Asia/Tokyo:20260715T090000\r\n"));
        assert_eq!(
            observances(&text),
            [(s("STANDARD"), s("19700101T000000"), s("+0900"), s("+0900"))]
        );
    }

    #[test]
    fn the_repeated_autumn_hour_is_written_unambiguously() {
        // 02:30 happens at 00:30Z (summer time) and 01:30Z (winter time) on
        // 2026-10-25 in Paris; readers take 02:30 local as the first.
        let first = ics(&invite(utc(2026, 10, 25, 0, 30)));
        assert!(first.contains("\r\nDTSTART;TZID=Europe/Paris:20261025T023000\r\n"));
        let second = ics(&invite(utc(2026, 10, 25, 1, 30)));
        assert!(second.contains("\r\nDTSTART:20261025T013000Z\r\n"));
        assert_eq!(
            start_of(the_event(&parse(&second))),
            CalendarDateTime::Utc(utc(2026, 10, 25, 1, 30))
        );
    }

    #[test]
    fn the_same_invite_gives_the_same_file() {
        let invite = invite(utc(2026, 7, 15, 7, 0));
        let text = ics(&invite);
        assert_eq!(ics(&invite), text);
        // One DTSTAMP and one UID: the event's, none in the VTIMEZONE.
        assert_eq!(text.matches("\r\nDTSTAMP:").count(), 1);
        assert_eq!(text.matches("\r\nUID:").count(), 1);
        assert!(text.starts_with("BEGIN:VCALENDAR\r\nPRODID:-//Guichet//Bookings//EN\r\n"));
        let zone = text.find("BEGIN:VTIMEZONE").unwrap();
        let event = text.find("BEGIN:VEVENT").unwrap();
        assert!(zone < event);
    }
}
