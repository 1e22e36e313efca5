//! What a booking's customer is told: an e-mail in their language for each
//! change, with the iCalendar file (RFC 5545) of the booking attached
//! (`METHOD:REQUEST` while it holds its time, `METHOD:CANCEL` once
//! cancelled, one UID per booking, its SEQUENCE raised by each reschedule
//! and cancellation), and the same file at
//! `GET /v1/me/bookings/{id}/calendar.ics`. In a preview session the e-mail
//! goes to the staff member previewing.

use chrono::{DateTime, Utc};
use guichet_domain::bookings::{CalendarInvite, CalendarMethod, ics};
use guichet_domain::organization::Locale;
use guichet_store::DbConnection;
use guichet_store::repo::bookings::{self, BookingRow};
use guichet_store::repo::outbox::Attachment;
use guichet_store::repo::{customers, organizations, portal};

use crate::notify::{self, Channel, Template, templates::BookingNotice};
use crate::problem::ApiError;

/// The booking's calendar file, as its customer gets it.
pub fn calendar(
    conn: &mut DbConnection,
    booking: &BookingRow,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let settings = super::settings_of(conn, &booking.org_id)?;
    let org = organizations::get(conn, &booking.org_id)?;
    let customer = customers::get(conn, &booking.org_id, &booking.customer_id)?;
    let service = bookings::get_service(conn, &booking.org_id, &booking.service_id)?;
    let provider = bookings::get_provider(conn, &booking.org_id, &booking.provider_id)?;
    let branding = portal::find(conn, &booking.org_id)?;
    let organizer_email = branding
        .as_ref()
        .and_then(|p| p.contact_email.clone())
        .or_else(|| org.support_email.clone())
        .unwrap_or_else(|| format!("no-reply@{}.guichet.localhost", org.slug.as_str()));
    let organizer_name = branding
        .as_ref()
        .and_then(|p| p.display_name.clone())
        .unwrap_or_else(|| org.name.clone());
    let location = branding.as_ref().and_then(|p| p.address.clone());
    let cancelled = !matches!(booking.status.as_str(), "pending" | "confirmed");
    Ok(ics(&CalendarInvite {
        uid: format!("{}@{}.guichet", booking.id, org.slug.as_str()),
        sequence: u32::try_from(booking.sequence).unwrap_or(0),
        method: if cancelled {
            CalendarMethod::Cancel
        } else {
            CalendarMethod::Request
        },
        stamp: now,
        start: booking.start_at,
        end: booking.end_at,
        tz: settings.time_zone.tz(),
        summary: service_name(&service.names, customer.locale),
        description: Some(provider.name),
        location,
        organizer_name,
        organizer_email,
        attendee_name: customer.name,
        attendee_email: Some(customer.email),
    }))
}

fn service_name(names: &std::collections::BTreeMap<String, String>, locale: Locale) -> String {
    names
        .get(locale.as_str())
        .or_else(|| names.values().next())
        .cloned()
        .unwrap_or_default()
}

/// Who gets a booking's e-mail.
#[derive(Debug, Clone, Copy)]
pub enum To<'a> {
    /// Its customer.
    Customer,
    /// A staff member, for the organization's test customer (preview).
    Staff(&'a str),
    /// Nobody: an API key acted on the test customer's booking.
    Nobody,
}

/// Tells the customer of `booking` what happened (`what`), in the caller's
/// transaction: an e-mail (with the calendar file unless it was declined
/// or is a request), to `to`.
pub fn tell(
    conn: &mut DbConnection,
    booking: &BookingRow,
    what: BookingNotice,
    to: To<'_>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let settings = super::settings_of(conn, &booking.org_id)?;
    let org = organizations::get(conn, &booking.org_id)?;
    let customer = customers::get(conn, &booking.org_id, &booking.customer_id)?;
    let service = bookings::get_service(conn, &booking.org_id, &booking.service_id)?;
    let provider = bookings::get_provider(conn, &booking.org_id, &booking.provider_id)?;
    let to = match to {
        To::Customer => customer.email.clone(),
        To::Staff(staff_id) => {
            guichet_store::repo::staff::get(conn, &booking.org_id, staff_id)?.email
        }
        To::Nobody => return Ok(()),
    };
    let local = booking.start_at.with_timezone(&settings.time_zone.tz());
    let template = Template::BookingNotice {
        org_name: org.name.clone(),
        what,
        service: service_name(&service.names, customer.locale),
        when: format!(
            "{} ({})",
            local.format("%Y-%m-%d %H:%M"),
            settings.time_zone.name()
        ),
        provider: provider.name,
        reason: booking.reason.clone(),
    };
    let attach = matches!(
        what,
        BookingNotice::Confirmed | BookingNotice::Rescheduled | BookingNotice::Cancelled
    );
    let attachments = if attach {
        let method = if what == BookingNotice::Cancelled {
            "CANCEL"
        } else {
            "REQUEST"
        };
        vec![Attachment {
            filename: "invitation.ics".to_owned(),
            content_type: format!("text/calendar; method={method}; charset=UTF-8"),
            content: calendar(conn, booking, now)?.into_bytes(),
            render: None,
        }]
    } else {
        Vec::new()
    };
    notify::queue_with_attachments(
        conn,
        Some(&booking.org_id),
        Channel::Email,
        &to,
        &template,
        customer.locale,
        now,
        &attachments,
    )?;
    Ok(())
}
