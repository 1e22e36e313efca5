//! Diesel table definitions, the same for both backends.

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        locale -> Text,
        created_at -> Timestamp,
        login_methods -> Text,
        support_email -> Nullable<Text>,
        support_phone -> Nullable<Text>,
    }
}

diesel::table! {
    staff_users (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    customers (id) {
        id -> Text,
        org_id -> Text,
        email -> Text,
        name -> Text,
        mobile -> Nullable<Text>,
        locale -> Text,
        external_ref -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        registered_at -> Nullable<Timestamp>,
        blocked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        org_id -> Text,
        subject_kind -> Text,
        subject_id -> Text,
        remember_me -> Bool,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    one_time_codes (id) {
        id -> Text,
        org_id -> Text,
        subject_kind -> Text,
        subject_id -> Text,
        purpose -> Text,
        code_hash -> Text,
        channel -> Text,
        destination -> Text,
        destination_key -> Text,
        payload -> Nullable<Text>,
        attempts -> Integer,
        max_attempts -> Integer,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_throttles (key) {
        key -> Text,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    used_challenges (id) {
        id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        channel -> Text,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        template -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        claim_token -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    staff_users,
    api_keys,
    customers,
    sessions,
    refresh_tokens,
    one_time_codes,
    login_throttles,
    used_challenges,
    outbox,
);
