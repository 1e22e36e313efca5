//! How passwords are stored.

use argon2::password_hash::{PasswordHasher, SaltString};
use guichet_store::repo::customers;
use guichet_tests::TestApp;
use guichet_tests::identity::PASSWORD;

fn weak_hash(password: &str) -> String {
    let params = argon2::Params::new(4096, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

#[test]
fn passwords_are_stored_as_argon2id_phc_strings_with_the_current_parameters() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "ana@example.com", None);

    let stored = customers::password_hash(&mut app.store.conn().unwrap(), &id)
        .unwrap()
        .unwrap();

    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!stored.contains(PASSWORD));
}

#[test]
fn a_hash_below_the_current_parameters_is_rehashed_at_the_next_successful_login() {
    let app = TestApp::spawn();
    let org = app.org("acme");
    let (id, _) = app.registered_customer(&org, "ana@example.com", None);
    let old = weak_hash(PASSWORD);
    customers::set_password(
        &mut app.store.conn().unwrap(),
        &id,
        &old,
        chrono::Utc::now(),
    )
    .unwrap();

    let wrong = app.login(&org, "ana@example.com", "Wrong-Password-1!");
    let still_old = customers::password_hash(&mut app.store.conn().unwrap(), &id).unwrap();
    let right = app.login(&org, "ana@example.com", PASSWORD);
    let stored = customers::password_hash(&mut app.store.conn().unwrap(), &id)
        .unwrap()
        .unwrap();

    assert_eq!(wrong.status, 401);
    assert_eq!(
        still_old.as_deref(),
        Some(old.as_str()),
        "a failed login changes nothing"
    );
    assert_eq!(right.status, 200, "{}", right.text());
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(app.login(&org, "ana@example.com", PASSWORD).status, 200);
}
