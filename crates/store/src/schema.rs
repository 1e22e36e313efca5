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
    rate_limit_keys (key) {
        key -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rate_limit_hits (id) {
        id -> Text,
        key -> Text,
        at -> Timestamp,
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

diesel::table! {
    payment_settings (org_id) {
        org_id -> Text,
        collections_phone -> Nullable<Text>,
        card_change_notice_days -> Integer,
        accepted_brands -> Text,
        retry_count -> Integer,
        retry_delay_days -> Integer,
        updated_at -> Timestamp,
        invoice_partial_payments -> Bool,
    }
}

diesel::table! {
    contact_channels (org_id) {
        org_id -> Text,
        time_zone -> Text,
        channels -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cards (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        token -> Text,
        brand -> Text,
        last4 -> Text,
        exp_month -> Integer,
        exp_year -> Integer,
        funding -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        order_number -> Text,
        merchant_brand -> Text,
        purchase_date -> Date,
        total_amount -> BigInt,
        currency -> Text,
        card_id -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    instalments (id) {
        id -> Text,
        order_id -> Text,
        org_id -> Text,
        number -> Integer,
        due_date -> Date,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        paid_at -> Nullable<Timestamp>,
        attempts -> Integer,
        next_attempt_on -> Nullable<Date>,
        debit_on -> Nullable<Date>,
        claim_token -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    adjustments (id) {
        id -> Text,
        order_id -> Text,
        kind -> Text,
        amount -> BigInt,
        refund_amount -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    refunds (id) {
        id -> Text,
        order_id -> Text,
        adjustment_id -> Text,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        gateway_refund_id -> Nullable<Text>,
        created_at -> Timestamp,
        settled_at -> Nullable<Timestamp>,
        failure_code -> Nullable<Text>,
        claim_token -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::joinable!(refunds -> orders (order_id));

diesel::table! {
    refund_parts (id) {
        id -> Text,
        refund_id -> Text,
        charge_id -> Text,
        idempotency_key -> Text,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        gateway_refund_id -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sandbox_ledger (merchant, kind, idempotency_key) {
        merchant -> Text,
        kind -> Text,
        idempotency_key -> Text,
        id -> Text,
        reference -> Text,
        amount -> BigInt,
        currency -> Text,
        brand -> Nullable<Text>,
        last4 -> Nullable<Text>,
        outcome -> Text,
        failure_code -> Nullable<Text>,
        refunded -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    charges (id) {
        id -> Text,
        org_id -> Text,
        order_id -> Text,
        instalment_id -> Nullable<Text>,
        idempotency_key -> Text,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        gateway_charge_id -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        purpose -> Text,
        request_scope -> Nullable<Text>,
        request_key -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    creditor_settings (org_id) {
        org_id -> Text,
        name -> Text,
        address -> Text,
        creditor_id -> Text,
        iban -> Text,
        bic -> Text,
        prenotification_days -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        label -> Text,
        reference -> Text,
        balance -> BigInt,
        currency -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    account_entries (id) {
        id -> Text,
        account_id -> Text,
        org_id -> Text,
        kind -> Text,
        amount -> BigInt,
        label -> Text,
        collection_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mandates (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        account_id -> Text,
        status -> Text,
        payment_type -> Text,
        iban -> Text,
        bic -> Text,
        email -> Text,
        amount -> Nullable<BigInt>,
        spread_months -> Nullable<Integer>,
        debtor_name -> Text,
        debtor_address -> Nullable<Text>,
        umr -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mandate_signatures (mandate_id) {
        mandate_id -> Text,
        signed_at -> Timestamp,
        channel -> Text,
        destination -> Text,
        ip -> Text,
        user_agent -> Text,
        document_sha256 -> Text,
        last_collected_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        expired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mandate_documents (mandate_id) {
        mandate_id -> Text,
        pdf -> Binary,
        sha256 -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sepa_collections (id) {
        id -> Text,
        org_id -> Text,
        mandate_id -> Text,
        account_id -> Text,
        end_to_end_id -> Text,
        sequence_type -> Text,
        amount -> BigInt,
        currency -> Text,
        due_date -> Date,
        status -> Text,
        prenotified_at -> Nullable<Timestamp>,
        presented_at -> Nullable<Timestamp>,
        settled_at -> Nullable<Timestamp>,
        reject_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        invoice_id -> Nullable<Text>,
        invoice_payment_id -> Nullable<Text>,
    }
}

diesel::table! {
    outbox_attachments (id) {
        id -> Text,
        outbox_id -> Text,
        filename -> Text,
        content_type -> Text,
        content -> Binary,
        render -> Nullable<Text>,
    }
}

diesel::table! {
    security_events (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        kind -> Text,
        actor -> Text,
        field -> Nullable<Text>,
        value -> Nullable<Text>,
        session_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    contact_changes (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        field -> Text,
        new_value -> Text,
        requested_by -> Text,
        requester_id -> Text,
        code_hash -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        expires_at -> Timestamp,
        status -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        org_id -> Text,
        event_type -> Text,
        object_type -> Text,
        object_id -> Text,
        customer_id -> Nullable<Text>,
        actor -> Text,
        data -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        org_id -> Text,
        url -> Text,
        description -> Text,
        event_types -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        secret_sealed -> Text,
        previous_secret_sealed -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        org_id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        claim_token -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        org_id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        attempt -> Integer,
        outcome -> Text,
        http_status -> Nullable<Integer>,
        latency_ms -> Integer,
        response -> Text,
        error -> Nullable<Text>,
        next_retry_at -> Nullable<Timestamp>,
        started_at -> Timestamp,
    }
}

diesel::table! {
    consent_settings (org_id) {
        org_id -> Text,
        activation_url -> Text,
        video_url -> Text,
        terms_version -> Text,
        terms_url -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consent_accounts (id) {
        id -> Text,
        org_id -> Text,
        company_name -> Text,
        client_reference -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        org_id -> Text,
        account_id -> Text,
        cardholder_name -> Text,
        email -> Nullable<Text>,
        mobile -> Nullable<Text>,
        email_masked -> Text,
        mobile_masked -> Text,
        language -> Text,
        status -> Text,
        failure_reason -> Nullable<Text>,
        expires_at -> Timestamp,
        effective_from -> Nullable<Date>,
        sca_session_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consent_invitations (id) {
        id -> Text,
        consent_id -> Text,
        org_id -> Text,
        token_hash -> Text,
        email -> Nullable<Text>,
        email_masked -> Text,
        expires_at -> Timestamp,
        dead_at -> Nullable<Timestamp>,
        opened_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consent_steps (id) {
        id -> Text,
        consent_id -> Text,
        org_id -> Text,
        seq -> Integer,
        kind -> Text,
        detail -> Nullable<Text>,
        message_id -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    sandbox_sca_sessions (id) {
        id -> Text,
        merchant -> Text,
        idempotency_key -> Text,
        card_token -> Text,
        outcome -> Nullable<Text>,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    portal_settings (org_id) {
        org_id -> Text,
        slug -> Text,
        actions -> Text,
        display_name -> Nullable<Text>,
        accent_color -> Nullable<Text>,
        contact_email -> Nullable<Text>,
        phone -> Nullable<Text>,
        address -> Nullable<Text>,
        website -> Nullable<Text>,
        test_customer_id -> Nullable<Text>,
        updated_at -> Timestamp,
        autopay_customers_can_change -> Bool,
        autopay_auto_enable_on_new_method -> Bool,
        autopay_checkbox_default -> Bool,
        billing_contact_email -> Nullable<Text>,
    }
}

diesel::table! {
    portal_logos (org_id) {
        org_id -> Text,
        content_type -> Text,
        content -> Binary,
        sha256 -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    portal_customer_overrides (customer_id, action) {
        org_id -> Text,
        customer_id -> Text,
        action -> Text,
        enabled -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        kind -> Text,
        title -> Text,
        body -> Text,
        link -> Nullable<Text>,
        object_type -> Nullable<Text>,
        object_id -> Nullable<Text>,
        test -> Bool,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        kind -> Text,
        title -> Text,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        blob_key -> Text,
        created_by_kind -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        first_opened_at -> Nullable<Timestamp>,
        withdrawn_at -> Nullable<Timestamp>,
        withdrawn_by -> Nullable<Text>,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        subject -> Text,
        status -> Text,
        assigned_staff_id -> Nullable<Text>,
        created_at -> Timestamp,
        last_message_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    conversation_messages (id) {
        id -> Text,
        conversation_id -> Text,
        org_id -> Text,
        author_kind -> Text,
        author_id -> Text,
        body -> Text,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    message_attachments (document_id) {
        document_id -> Text,
        message_id -> Text,
        org_id -> Text,
        position -> Integer,
    }
}

diesel::table! {
    booking_settings (org_id) {
        org_id -> Text,
        online_booking -> Bool,
        confirmation -> Text,
        horizon_days -> Integer,
        min_notice_minutes -> Integer,
        cancel_allowed -> Bool,
        cancel_until_hours -> Integer,
        reschedule_allowed -> Bool,
        reschedule_until_hours -> Integer,
        max_pending -> Integer,
        reminder_hours_before -> Integer,
        time_zone -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    booking_providers (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        kind -> Text,
        staff_id -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    booking_services (id) {
        id -> Text,
        org_id -> Text,
        names -> Text,
        duration_minutes -> Integer,
        buffer_after_minutes -> Integer,
        price_amount -> Nullable<BigInt>,
        price_currency -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    booking_service_providers (service_id, provider_id) {
        service_id -> Text,
        provider_id -> Text,
        org_id -> Text,
    }
}

diesel::table! {
    booking_windows (id) {
        id -> Text,
        org_id -> Text,
        provider_id -> Text,
        weekday -> Integer,
        start_minute -> Integer,
        end_minute -> Integer,
    }
}

diesel::table! {
    booking_exceptions (id) {
        id -> Text,
        org_id -> Text,
        provider_id -> Text,
        day -> Date,
        kind -> Text,
        start_minute -> Nullable<Integer>,
        end_minute -> Nullable<Integer>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bookings (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        service_id -> Text,
        provider_id -> Text,
        start_at -> Timestamp,
        end_at -> Timestamp,
        busy_until -> Timestamp,
        status -> Text,
        note -> Nullable<Text>,
        created_by_kind -> Text,
        created_by -> Text,
        reason -> Nullable<Text>,
        cancelled_by_kind -> Nullable<Text>,
        sequence -> Integer,
        test -> Bool,
        reminder_due_at -> Nullable<Timestamp>,
        reminder_sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(webhook_deliveries -> events (event_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));

diesel::table! {
    payment_methods (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        kind -> Text,
        card_token -> Nullable<Text>,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Text>,
        card_exp_month -> Nullable<Integer>,
        card_exp_year -> Nullable<Integer>,
        card_funding -> Nullable<Text>,
        mandate_id -> Nullable<Text>,
        iban_masked -> Nullable<Text>,
        umr -> Nullable<Text>,
        is_default -> Bool,
        created_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    customer_autopay (org_id, customer_id) {
        org_id -> Text,
        customer_id -> Text,
        enabled -> Bool,
        payment_method_id -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    invoice_counters,
    invoices,
    invoice_lines,
    invoice_payments,
    payment_methods,
    customer_autopay,
    booking_settings,
    booking_providers,
    booking_services,
    booking_service_providers,
    booking_windows,
    booking_exceptions,
    bookings,
    documents,
    conversations,
    conversation_messages,
    message_attachments,
    portal_settings,
    portal_logos,
    portal_customer_overrides,
    notifications,
    organizations,
    staff_users,
    api_keys,
    customers,
    security_events,
    contact_changes,
    sessions,
    refresh_tokens,
    one_time_codes,
    login_throttles,
    rate_limit_keys,
    rate_limit_hits,
    used_challenges,
    outbox,
    payment_settings,
    contact_channels,
    cards,
    orders,
    instalments,
    adjustments,
    refunds,
    refund_parts,
    sandbox_ledger,
    charges,
    idempotency_keys,
    creditor_settings,
    accounts,
    account_entries,
    mandates,
    mandate_signatures,
    mandate_documents,
    sepa_collections,
    outbox_attachments,
    events,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    consent_settings,
    consent_accounts,
    consents,
    consent_invitations,
    consent_steps,
    sandbox_sca_sessions,
);

diesel::table! {
    invoice_counters (org_id, kind, year) {
        org_id -> Text,
        kind -> Text,
        year -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    invoices (id) {
        id -> Text,
        org_id -> Text,
        customer_id -> Text,
        kind -> Text,
        number -> Nullable<Text>,
        status -> Text,
        currency -> Text,
        subtotal -> BigInt,
        tax -> BigInt,
        total -> BigInt,
        amount_paid -> BigInt,
        reason -> Nullable<Text>,
        note -> Nullable<Text>,
        issue_date -> Date,
        due_date -> Date,
        document_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        issued_at -> Nullable<Timestamp>,
        paid_at -> Nullable<Timestamp>,
        voided_at -> Nullable<Timestamp>,
        void_reason -> Nullable<Text>,
    }
}

diesel::table! {
    invoice_lines (invoice_id, position) {
        invoice_id -> Text,
        position -> Integer,
        description -> Text,
        quantity -> BigInt,
        unit_amount -> BigInt,
        tax_rate_bp -> Integer,
        net -> BigInt,
        tax -> BigInt,
    }
}

diesel::table! {
    invoice_payments (id) {
        id -> Text,
        org_id -> Text,
        invoice_id -> Text,
        customer_id -> Text,
        amount -> BigInt,
        currency -> Text,
        source -> Text,
        method -> Text,
        status -> Text,
        gateway_key -> Nullable<Text>,
        gateway_charge_id -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        request_scope -> Nullable<Text>,
        request_key -> Nullable<Text>,
        details -> Nullable<Text>,
        reference -> Nullable<Text>,
        paid_on -> Nullable<Date>,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(invoice_lines -> invoices (invoice_id));
diesel::joinable!(invoice_payments -> invoices (invoice_id));
