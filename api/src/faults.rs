//! Test-only fault points: `guichet serve --fault-pause POINT:MILLISECONDS`
//! makes the named transaction sleep right before its COMMIT, so that a
//! crash test can kill the server while the effect is written but not yet
//! committed (api/tests/crash.rs). Unset, a point costs one look-up in an
//! empty list. The option is hidden from `--help` and documented in
//! docs/CONFIGURATION.md as for tests only.

use std::time::Duration;

/// A place where a transaction can be paused before its COMMIT.
///
/// To add one: a variant here, its name in [`FaultPoint::name`] and
/// [`FaultPoint::ALL`], and a call to [`Faults::pause`] right before the
/// transaction's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// `POST /v1/admin/accounts/{id}/charges`: the charge and its answer.
    AccountCharge,
    /// `POST /v1/me/mandates/{id}/signature`: the signature and its answer.
    MandateSignature,
    /// `POST /v1/me/schedules/{id}/regularization`: the settled charge and
    /// the plan applied to the schedule.
    Regularization,
    /// `POST /v1/admin/consents`: the consent, its invitation and its answer.
    ConsentOrder,
    /// `POST /v1/consents/{token}/completion`: the activation, its
    /// confirmation e-mail and its event.
    ConsentCompletion,
    /// `POST /v1/me/bookings`: the booking, its event and its answer.
    BookingRequest,
    /// `POST /v1/me/invoices/{id}/payments`: the settled payment, the
    /// invoice's amount paid, its event and the receipt e-mail.
    InvoicePayment,
}

impl FaultPoint {
    /// Every point.
    pub const ALL: &'static [FaultPoint] = &[
        FaultPoint::AccountCharge,
        FaultPoint::MandateSignature,
        FaultPoint::Regularization,
        FaultPoint::ConsentOrder,
        FaultPoint::ConsentCompletion,
        FaultPoint::BookingRequest,
        FaultPoint::InvoicePayment,
    ];

    /// The name given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AccountCharge => "account_charge",
            FaultPoint::MandateSignature => "mandate_signature",
            FaultPoint::Regularization => "regularization",
            FaultPoint::ConsentOrder => "consent_order",
            FaultPoint::ConsentCompletion => "consent_completion",
            FaultPoint::BookingRequest => "booking_request",
            FaultPoint::InvoicePayment => "invoice_payment",
        }
    }
}

/// Parses `POINT:MILLISECONDS` (`--fault-pause`).
pub fn parse_pause(spec: &str) -> Result<(FaultPoint, Duration), String> {
    let (name, millis) = spec
        .split_once(':')
        .ok_or_else(|| format!("{spec:?} is not POINT:MILLISECONDS"))?;
    let point = FaultPoint::ALL
        .iter()
        .copied()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            let names: Vec<_> = FaultPoint::ALL.iter().map(|p| p.name()).collect();
            format!("unknown fault point {name:?} (known: {})", names.join(", "))
        })?;
    let millis: u64 = millis
        .parse()
        .map_err(|_| format!("{millis:?} is not a number of milliseconds"))?;
    Ok((point, Duration::from_millis(millis)))
}

/// The pauses asked for; none in production.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pauses: Vec<(FaultPoint, Duration)>,
}

impl Faults {
    pub fn new(pauses: Vec<(FaultPoint, Duration)>) -> Self {
        Faults { pauses }
    }

    /// Sleeps (blocking: call it from the blocking thread that holds the
    /// transaction) for the pause set at `point`, if any.
    pub fn pause(&self, point: FaultPoint) {
        for (p, duration) in &self.pauses {
            if *p == point {
                tracing::warn!(
                    point = point.name(),
                    millis = duration.as_millis() as u64,
                    "fault point: pausing before COMMIT"
                );
                std::thread::sleep(*duration);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_parse_by_name() {
        assert_eq!(
            parse_pause("account_charge:1500").unwrap(),
            (FaultPoint::AccountCharge, Duration::from_millis(1500))
        );
        assert_eq!(
            parse_pause("mandate_signature:0").unwrap(),
            (FaultPoint::MandateSignature, Duration::ZERO)
        );
        assert!(
            parse_pause("nowhere:10")
                .unwrap_err()
                .contains("account_charge")
        );
        assert!(parse_pause("account_charge").is_err());
        assert!(parse_pause("account_charge:soon").is_err());
    }
}
