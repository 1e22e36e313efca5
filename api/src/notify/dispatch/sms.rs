//! SMS delivery: JSON files (development) or an HTTP provider.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use guichet_store::repo::outbox::Message;

use super::{DeliveryError, files};
use crate::config::{NotifySettings, SmsDeliveryMode};

/// How long a call to the SMS provider may take, all included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where SMS go, resolved once from the settings.
pub(super) enum SmsSender {
    /// `<outbox dir>/sms/`.
    File(PathBuf),
    /// `POST {"to", "body"}` to the provider.
    Http {
        agent: ureq::Agent,
        url: String,
        token: Option<String>,
    },
}

impl SmsSender {
    /// Checks the provider URL when SMS go over HTTP.
    pub(super) fn new(settings: &NotifySettings) -> Result<SmsSender, String> {
        match settings.sms {
            SmsDeliveryMode::File => Ok(SmsSender::File(settings.outbox_dir.join("sms"))),
            SmsDeliveryMode::Http => {
                let url = settings
                    .sms_provider_url
                    .clone()
                    .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                    .ok_or("SMS delivery over HTTP needs an http(s) provider URL")?;
                let config = ureq::Agent::config_builder()
                    .timeout_global(Some(HTTP_TIMEOUT))
                    // The status is judged here: any non-2xx is a failure.
                    .http_status_as_error(false)
                    // A redirect is a misconfiguration, not something to
                    // follow with the message.
                    .max_redirects(0)
                    .build();
                Ok(SmsSender::Http {
                    agent: ureq::Agent::new_with_config(config),
                    url,
                    token: settings.sms_provider_token.clone(),
                })
            }
        }
    }

    /// Delivers `message` (written at `now` for file delivery).
    pub(super) fn send(&self, message: &Message, now: DateTime<Utc>) -> Result<(), DeliveryError> {
        match self {
            SmsSender::File(dir) => {
                let json = serde_json::json!({
                    "id": message.id,
                    "to": message.recipient,
                    "body": message.body,
                    "template": message.template,
                });
                let mut bytes = serde_json::to_vec_pretty(&json)
                    .map_err(|e| DeliveryError::retry(format!("cannot encode the SMS: {e}")))?;
                bytes.push(b'\n');
                let name = files::file_name(now, &message.id, "json");
                files::write_atomically(dir, &name, &bytes)
                    .map(|_| ())
                    .map_err(DeliveryError::retry)
            }
            SmsSender::Http { agent, url, token } => {
                let mut request = agent.post(url.as_str());
                if let Some(token) = token {
                    request = request.header("Authorization", format!("Bearer {token}"));
                }
                let body = serde_json::json!({ "to": message.recipient, "body": message.body });
                // The provider's answer is not logged: it may echo the text.
                match request.send_json(&body) {
                    Ok(response) if response.status().is_success() => Ok(()),
                    Ok(response) => Err(DeliveryError::retry(format!(
                        "SMS provider answered HTTP {}",
                        response.status().as_u16()
                    ))),
                    Err(e) => Err(DeliveryError::retry(format!(
                        "SMS provider unreachable: {e}"
                    ))),
                }
            }
        }
    }
}
