//! Setting up people for a test: an organization with its admin (created
//! as `guichet admin create-org` does, then set up over HTTP), customers
//! created by staff over HTTP, customers who set up their access over HTTP.

use chrono::Utc;
use serde_json::{Value, json};

use crate::{TEST_SECRET_KEY, TestApp};

/// A password that meets the rule.
pub const PASSWORD: &str = "Correct-Horse-42!";

/// An organization and its signed-in admin.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub slug: String,
    pub admin_email: String,
    /// The admin's access token.
    pub admin: String,
}

/// Signed-in tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl Tokens {
    pub fn from_json(body: &Value) -> Tokens {
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            session_id: body["session_id"].as_str().unwrap().to_owned(),
        }
    }
}

impl TestApp {
    /// Creates organization `slug` with its first admin, as the command line
    /// does; returns the admin's setup token.
    pub fn provision_org(&self, slug: &str) -> (String, String, String) {
        let mut conn = self.store.conn().unwrap();
        let new = guichet_api::provision::create_organization(
            &mut conn,
            TEST_SECRET_KEY.as_bytes(),
            slug,
            &format!("Org {slug}"),
            &format!("admin@{slug}.example.com"),
            Utc::now(),
        )
        .unwrap();
        (new.organization.id, new.admin.email, new.setup_token)
    }

    /// An organization whose admin has set a password and is signed in.
    pub fn org(&self, slug: &str) -> Org {
        let (id, admin_email, setup_token) = self.provision_org(slug);
        let res = self
            .request("POST", "/v1/auth/staff/setup")
            .json(&json!({"token": setup_token, "password": PASSWORD}))
            .send();
        assert_eq!(res.status, 200, "{}", res.text());
        Org {
            id,
            slug: slug.to_owned(),
            admin_email,
            admin: res.json()["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a customer through the admin API; returns its JSON.
    pub fn customer(&self, org: &Org, email: &str, mobile: Option<&str>) -> Value {
        let mut body = json!({"name": "Test Customer", "email": email});
        if let Some(mobile) = mobile {
            body["mobile"] = json!(mobile);
        }
        let res = self
            .request("POST", "/v1/admin/customers")
            .bearer(&org.admin)
            .json(&body)
            .send();
        assert_eq!(res.status, 201, "{}", res.text());
        res.json()
    }

    /// A customer who has set up access (first connection) with
    /// [`PASSWORD`]; returns the customer's id and tokens.
    pub fn registered_customer(
        &self,
        org: &Org,
        email: &str,
        mobile: Option<&str>,
    ) -> (String, Tokens) {
        let id = self.customer(org, email, mobile)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let before = self.wait_for_messages(email, 0).len();
        let res = self
            .request("POST", "/v1/auth/register")
            .json(&json!({"organization": org.slug, "email": email, "password": PASSWORD}))
            .send();
        assert_eq!(res.status, 202, "{}", res.text());
        let code = self.nth_message(email, before + 1).code(6).unwrap();
        let res = self
            .request("POST", "/v1/auth/register/verify")
            .json(&json!({"organization": org.slug, "email": email, "code": code}))
            .send();
        assert_eq!(res.status, 200, "{}", res.text());
        (id, Tokens::from_json(&res.json()))
    }

    /// Signs a customer in with a password.
    pub fn login(&self, org: &Org, email: &str, password: &str) -> crate::Response {
        self.request("POST", "/v1/auth/login")
            .json(&json!({"organization": org.slug, "email": email, "password": password}))
            .send()
    }
}
