//! People and their access: customers, staff, sessions, and the rules that
//! throttle sign-in attempts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::organization::Locale;

/// How customers of an organization may sign in to its portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethods {
    /// E-mail and password only.
    Password,
    /// A one-time code by SMS or e-mail only.
    Passwordless,
    /// Either.
    #[default]
    Both,
}

impl LoginMethods {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethods::Password => "password",
            LoginMethods::Passwordless => "passwordless",
            LoginMethods::Both => "both",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "password" => Some(LoginMethods::Password),
            "passwordless" => Some(LoginMethods::Passwordless),
            "both" => Some(LoginMethods::Both),
            _ => None,
        }
    }

    pub fn allows_password(self) -> bool {
        matches!(self, LoginMethods::Password | LoginMethods::Both)
    }

    pub fn allows_passwordless(self) -> bool {
        matches!(self, LoginMethods::Passwordless | LoginMethods::Both)
    }
}

/// A staff member's role in their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Manages staff, API keys and settings, and everything an agent does.
    Admin,
    /// Manages customers.
    Agent,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Agent => "agent",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(StaffRole::Admin),
            "agent" => Some(StaffRole::Agent),
            _ => None,
        }
    }
}

/// Who a session or a one-time code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    Customer,
    Staff,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Customer => "customer",
            SubjectKind::Staff => "staff",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "customer" => Some(SubjectKind::Customer),
            "staff" => Some(SubjectKind::Staff),
            _ => None,
        }
    }
}

/// A customer of an organization: the person who uses the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub org_id: String,
    /// Lower-case; unique within the organization (one portal access per
    /// e-mail).
    pub email: String,
    pub name: String,
    /// E.164, when known: passwordless codes then go by SMS.
    pub mobile: Option<String>,
    pub locale: Locale,
    /// The business's own reference for this customer.
    pub external_ref: Option<String>,
    /// When the customer set a password (first connection or activation).
    pub registered_at: Option<DateTime<Utc>>,
    /// Blocked by staff: no sign-in, no session.
    pub blocked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A staff member of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUser {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    /// Whether a password has been set (through the setup link).
    pub has_password: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Failed sign-in attempts for one account key (organization, kind and
/// e-mail), kept in the database so that every API node sees the same count,
/// and kept for unknown e-mails too so that it reveals nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// After this many failures, a solved challenge is required.
pub const CHALLENGE_AFTER_FAILURES: i32 = 3;
/// After this many failures, the account is locked.
pub const LOCK_AFTER_FAILURES: i32 = 10;
/// How long a lock lasts.
pub fn lock_duration() -> Duration {
    Duration::minutes(15)
}

/// What a sign-in attempt needs right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Open,
    /// Solve a proof-of-work challenge first.
    ChallengeRequired,
    /// No attempt is accepted until then.
    Locked { until: DateTime<Utc> },
}

impl Throttle {
    /// The gate for an attempt at `now`. A lock that has expired counts as
    /// open again, with the challenge still required until a success
    /// resets the counter.
    pub fn gate(&self, now: DateTime<Utc>) -> Gate {
        if let Some(until) = self.locked_until.filter(|until| *until > now) {
            return Gate::Locked { until };
        }
        if self.failed_logins >= CHALLENGE_AFTER_FAILURES {
            Gate::ChallengeRequired
        } else {
            Gate::Open
        }
    }

    /// The state after one more failure at `now`: the tenth failure (and
    /// every one after an expired lock) locks the account.
    pub fn after_failure(&self, now: DateTime<Utc>) -> Throttle {
        let failed_logins = self.failed_logins.saturating_add(1);
        let locked_until = if failed_logins >= LOCK_AFTER_FAILURES {
            Some(now + lock_duration())
        } else {
            self.locked_until
        };
        Throttle {
            failed_logins,
            locked_until,
        }
    }
}

/// Lifetimes of the things sign-in hands out.
pub mod lifetimes {
    use chrono::Duration;

    /// Access tokens (JWT).
    pub fn access_token() -> Duration {
        Duration::minutes(15)
    }
    /// A session without "remember me".
    pub fn session() -> Duration {
        Duration::hours(12)
    }
    /// A session with "remember me".
    pub fn remembered_session() -> Duration {
        Duration::days(30)
    }
    /// One-time codes sent by SMS or e-mail.
    pub fn one_time_code() -> Duration {
        Duration::minutes(10)
    }
    /// Password-reset links.
    pub fn password_reset() -> Duration {
        Duration::minutes(30)
    }
    /// Activation codes printed on a letter.
    pub fn activation_code() -> Duration {
        Duration::days(30)
    }
    /// A new staff member's setup token.
    pub fn staff_setup() -> Duration {
        Duration::days(7)
    }
}

/// How many wrong entries void a one-time code.
pub const CODE_MAX_ATTEMPTS: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, minute, 0).unwrap()
    }

    #[test]
    fn three_failures_require_a_challenge_and_ten_lock_for_fifteen_minutes() {
        let mut throttle = Throttle::default();
        for _ in 0..2 {
            throttle = throttle.after_failure(at(0));
            assert_eq!(throttle.gate(at(0)), Gate::Open);
        }
        throttle = throttle.after_failure(at(0));
        assert_eq!(throttle.gate(at(0)), Gate::ChallengeRequired);
        for _ in 3..9 {
            throttle = throttle.after_failure(at(0));
        }
        assert_eq!(throttle.failed_logins, 9);
        assert_eq!(throttle.gate(at(0)), Gate::ChallengeRequired);
        throttle = throttle.after_failure(at(1));
        assert_eq!(throttle.gate(at(2)), Gate::Locked { until: at(16) });
        assert_eq!(throttle.gate(at(16)), Gate::ChallengeRequired);
        // A failure after the lock expired locks again at once.
        let again = throttle.after_failure(at(17));
        assert_eq!(again.gate(at(17)), Gate::Locked { until: at(32) });
    }

    #[test]
    fn login_methods_say_what_they_allow() {
        assert!(LoginMethods::Both.allows_password() && LoginMethods::Both.allows_passwordless());
        assert!(!LoginMethods::Password.allows_passwordless());
        assert!(!LoginMethods::Passwordless.allows_password());
        assert_eq!(LoginMethods::parse("both"), Some(LoginMethods::Both));
        assert_eq!(LoginMethods::parse("sms"), None);
    }
}
