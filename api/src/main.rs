//! The `guichet` command: `serve`, `migrate`, `openapi`, `admin`, `jobs`.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use guichet_api::config::{
    AdminCommand, BookingRemindersArgs, Cli, Command, ConsentExpiryArgs, CreateApiKeyArgs,
    CreateOrgArgs, DbArgs, DebitArgs, DevCommand, JobsCommand, LogFormat, RefundArgs, ServeArgs,
    Settings, WebhookJobArgs,
};
use guichet_api::server::{Parts, start};
use guichet_api::{demo, openapi, telemetry};
use guichet_domain::{Clock, SystemClock};
use guichet_jobs::debit::DebitRun;
use guichet_jobs::refunds::{RefundReport, RefundRun};
use guichet_jobs::runner::{Ending, Stop};
use guichet_jobs::sepa::SepaRun;
use guichet_store::{PoolOptions, Store, migrations};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", openapi::spec_json());
            ExitCode::SUCCESS
        }
        Command::Migrate(db) => migrate(&db),
        Command::Serve(args) => serve(&args),
        Command::Admin(AdminCommand::CreateOrg(args)) => create_org(&args),
        Command::Admin(AdminCommand::CreateApiKey(args)) => create_api_key(&args),
        Command::Jobs(JobsCommand::Debit(args)) => debit_run(&args),
        Command::Jobs(JobsCommand::Refunds(args)) => refunds_run(&args),
        Command::Jobs(JobsCommand::Webhooks(args)) => webhooks_run(&args),
        Command::Jobs(JobsCommand::ConsentExpiry(args)) => consent_expiry_run(&args),
        Command::Jobs(JobsCommand::BookingReminders(args)) => booking_reminders_run(&args),
        Command::Dev(DevCommand::WebhookReceiver(args)) => {
            match guichet_api::webhooks::receiver::run(args.port, args.secrets) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}

fn open_store(db: &DbArgs) -> Result<Store, String> {
    let url = db.database_url()?;
    Store::connect(&url, &PoolOptions::one_shot()).map_err(|e| e.to_string())
}

fn create_org(args: &CreateOrgArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let secret = guichet_api::config::secret_key(
            &args.secret.secret_key,
            args.secret.env,
            &args.db.data_dir,
        )?;
        let store = open_store(&args.db)?;
        let mut conn = store.conn().map_err(|e| e.to_string())?;
        guichet_api::provision::create_organization(
            &mut conn,
            &secret,
            &args.slug,
            &args.name,
            &args.admin_email,
            SystemClock.now(),
        )
        .map_err(|e| e.to_string())
    })();
    match result {
        Ok(new) if args.json => {
            let json = serde_json::json!({
                "organization": {"id": new.organization.id, "slug": new.organization.slug.as_str(), "name": new.organization.name},
                "admin": {"id": new.admin.id, "email": new.admin.email},
                "setup_token": new.setup_token,
                "setup_endpoint": "POST /v1/auth/staff/setup",
            });
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(new) => {
            println!(
                "Organization `{}` ({}) created, id {}.",
                new.organization.slug.as_str(),
                new.organization.name,
                new.organization.id
            );
            println!("First admin: {} (id {}).", new.admin.email, new.admin.id);
            println!("One-time setup token (valid 7 days): {}", new.setup_token);
            println!(
                "The admin chooses a password with: POST /v1/auth/staff/setup {{\"token\": \"...\", \"password\": \"...\"}}"
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn create_api_key(args: &CreateApiKeyArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let store = open_store(&args.db)?;
        let mut conn = store.conn().map_err(|e| e.to_string())?;
        guichet_api::provision::create_api_key(&mut conn, &args.org, &args.name, SystemClock.now())
            .map_err(|e| e.to_string())
    })();
    match result {
        Ok((key, secret)) if args.json => {
            let json = serde_json::json!({"id": key.id, "organization": args.org, "name": key.name, "secret": secret});
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok((key, secret)) => {
            println!("API key {} created for `{}`.", key.id, args.org);
            println!("Secret (shown once): {secret}");
            println!("Use it as: Authorization: Bearer {secret}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("guichet: {message}");
    ExitCode::FAILURE
}

fn migrate(db: &DbArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let url = match db.database_url() {
        Ok(url) => url,
        Err(e) => return fail(e),
    };
    let store = match Store::connect(&url, &PoolOptions::one_shot()) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let status = store
        .conn()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| migrations::status(&mut conn).map_err(|e| e.to_string()));
    match status {
        Ok(versions) => {
            println!("{}: schema up to date", url.redacted());
            for (version, applied) in versions {
                println!(
                    "  {version} {}",
                    if applied { "applied" } else { "pending" }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let started = Instant::now();
    telemetry::init(args.log_format.unwrap_or(match args.env {
        guichet_api::config::Environment::Development => LogFormat::Text,
        guichet_api::config::Environment::Production => LogFormat::Json,
    }));
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    // The address first: a port in use is reported before the database is
    // touched (nothing migrated, no demo reset, no file created).
    let listener = match TcpListener::bind(settings.listen) {
        Ok(listener) => listener,
        Err(e) => return fail(format!("cannot listen on {}: {e}", settings.listen)),
    };
    let options = PoolOptions {
        max_size: settings.db_pool_size,
        ..PoolOptions::default()
    };
    let store = match Store::connect(&settings.database_url, &options) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let demo = if settings.demo {
        match demo::seed(&store, &settings.blobs, clock.clone(), &settings.secret_key) {
            Ok(summary) => {
                // The reset organizations' document bytes, now that their
                // rows are gone.
                settings.blobs.delete_all_blocking(&summary.stale_blobs);
                Some(summary)
            }
            Err(e) => return fail(format!("cannot create the demo data: {e}")),
        }
    } else {
        None
    };
    let address = listener.local_addr().map_or(settings.listen, |a| a);
    let dispatcher = match guichet_api::notify::dispatch::Dispatcher::new(
        &settings.notify,
        store.clone(),
        clock.clone(),
        guichet_api::notify::OutboxKey::derive(&settings.secret_key),
    ) {
        Ok(dispatcher) => dispatcher.spawn(),
        Err(e) => return fail(format!("notification delivery: {e}")),
    };
    // One gateway for the debit and refunds threads (the sandbox's ledger
    // is in the database, shared with the HTTP server and every node).
    let job_gateway = guichet_jobs::debit::gateway(
        settings.payment_gateway,
        store.clone(),
        &settings.secret_key,
        clock.clone(),
    );
    let debits = (args.debit_interval_secs > 0).then(|| {
        guichet_jobs::debit::DebitRun::new(store.clone(), job_gateway.clone(), clock.clone()).spawn(
            std::time::Duration::from_secs(args.debit_interval_secs),
            guichet_jobs::debit::DEFAULT_BATCH,
        )
    });
    let sepa_runs = (args.debit_interval_secs > 0).then(|| {
        guichet_jobs::sepa::SepaRun::new(store.clone(), clock.clone())
            .spawn(std::time::Duration::from_secs(args.debit_interval_secs))
    });
    let refund_runs = (args.refund_interval_secs > 0).then(|| {
        guichet_jobs::refunds::RefundRun::new(store.clone(), job_gateway.clone(), clock.clone())
            .spawn(std::time::Duration::from_secs(args.refund_interval_secs))
    });
    let events_purge = guichet_jobs::retention::EventsPurge::new(
        store.clone(),
        clock.clone(),
        args.events_retention_days,
    )
    .spawn(std::time::Duration::from_secs(3600));
    let consent_expiry = (args.consent_expiry_interval_secs > 0).then(|| {
        guichet_jobs::consents::ConsentExpiry::new(store.clone(), clock.clone()).spawn(
            std::time::Duration::from_secs(args.consent_expiry_interval_secs),
        )
    });
    let booking_reminders = (args.booking_reminder_interval_secs > 0).then(|| {
        guichet_jobs::bookings::BookingReminders::new(store.clone(), clock.clone()).spawn(
            std::time::Duration::from_secs(args.booking_reminder_interval_secs),
        )
    });
    let parts = Parts::new(&settings, store.clone(), clock);
    let webhook_runs = parts.spawn_webhooks(&settings);
    let result = actix_web::rt::System::new().block_on(async move {
        let server = actix_web::rt::spawn(start(&settings, parts, listener)?);
        // The server installs its SIGTERM/SIGINT handlers on its first poll:
        // let that happen before telling anyone it is up.
        actix_web::rt::task::yield_now().await;
        print_banner(&settings, &store, address, demo.as_ref());
        tracing::info!(
            %address,
            backend = store.backend().as_str(),
            startup_ms = started.elapsed().as_millis() as u64,
            "guichet is serving"
        );
        server.await.map_err(std::io::Error::other)?
    });
    // The job threads stop as `guichet jobs ...` does on SIGTERM: each asked
    // at once, then waited for (the batch in hand is finished, what is held
    // released).
    for job in [
        &debits,
        &sepa_runs,
        &refund_runs,
        &webhook_runs,
        &consent_expiry,
        &booking_reminders,
    ]
    .into_iter()
    .flatten()
    {
        job.request_stop();
    }
    events_purge.request_stop();
    for job in [
        debits,
        sepa_runs,
        refund_runs,
        webhook_runs,
        consent_expiry,
        booking_reminders,
    ]
    .into_iter()
    .flatten()
    {
        job.stop();
    }
    events_purge.stop();
    dispatcher.stop();
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn print_banner(
    settings: &Settings,
    store: &Store,
    address: std::net::SocketAddr,
    demo: Option<&demo::DemoSummary>,
) {
    let base = format!("http://{address}");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Guichet {} is listening on {base}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "  Swagger UI: {base}/swagger-ui/");
    let _ = writeln!(out, "  OpenAPI:    {base}/api-docs/openapi.json");
    let _ = writeln!(
        out,
        "  Health:     {base}/healthz  {base}/readyz  {base}/metrics"
    );
    let _ = writeln!(out, "  Database:   {}", store.redacted_url());
    let _ = writeln!(out, "  Data dir:   {}", settings.data_dir.display());
    if let Some(demo) = demo {
        if demo.reset.is_empty() {
            let _ = writeln!(out, "Demo data (created now):");
        } else {
            let _ = writeln!(
                out,
                "Demo data (reset: `{}` deleted with all their data and created again; \
                 other organizations are untouched):",
                demo.reset.join("`, `")
            );
        }
        for org in &demo.organizations {
            let _ = writeln!(
                out,
                "  organization: {} (slug `{}`) — {}",
                org.name, org.slug, org.what
            );
            for account in &org.accounts {
                match account.password {
                    Some(password) => {
                        let _ = writeln!(
                            out,
                            "    {}  password {}  — {}",
                            account.email, password, account.what
                        );
                    }
                    None => {
                        let _ = writeln!(out, "    {}  — {}", account.email, account.what);
                    }
                }
            }
        }
        if let Some((email, code)) = &demo.activation {
            let _ = writeln!(
                out,
                "  activation code for {email}: {code} (new at each start)"
            );
        }
        let _ = writeln!(
            out,
            "  e-mails and SMS are written to {}/outbox/ (email/*.eml, sms/*.json)",
            settings.data_dir.display()
        );
        let _ = writeln!(
            out,
            "  try: curl -s -X POST {base}/v1/auth/login -H 'content-type: application/json' -d '{{\"organization\":\"{}\",\"email\":\"{}\",\"password\":\"{}\"}}'",
            demo::lender::SLUG,
            demo::lender::SOPHIE.0,
            demo::lender::SOPHIE.1
        );
        let _ = writeln!(
            out,
            "  the README walks through sessions (a lender, a property manager, staff, identity); the demo is reset at each start"
        );
    }
    let _ = out.flush();
}

fn debit_run(args: &DebitArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let stop = Stop::on_signals()?;
        let secret = guichet_api::config::secret_key(
            &args.secret.secret_key,
            args.secret.env,
            &args.db.data_dir,
        )?;
        let store = open_store(&args.db)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let gateway = guichet_jobs::debit::gateway(
            args.payment_gateway,
            store.clone(),
            &secret,
            clock.clone(),
        );
        let report = DebitRun::new(store.clone(), gateway.clone(), clock.clone()).run_until(
            args.as_of,
            args.batch,
            stop.flag(),
        )?;
        let sepa = if stop.requested() {
            None
        } else {
            Some(SepaRun::new(store.clone(), clock.clone()).run(args.as_of)?)
        };
        let refunds = if stop.requested() {
            None
        } else {
            Some(RefundRun::new(store, gateway, clock).run_until(stop.flag())?)
        };
        Ok::<_, String>((report, sepa, refunds))
    })();
    let (report, sepa, refunds) = match result {
        Ok(reports) => reports,
        Err(e) => return fail(e),
    };
    let ending = [
        Some(report.ending()),
        sepa.map(|s| s.ending()),
        refunds.map(|r| r.ending()),
    ]
    .into_iter()
    .flatten()
    .fold(Ending::Done, Ending::worst);
    if args.json {
        let json = serde_json::json!({
            "as_of": args.as_of,
            "ending": ending,
            "report": report,
            "sepa": sepa,
            "refunds": refunds,
        });
        println!("{json}");
    } else {
        println!("Debit run as of {}:", args.as_of);
        println!("  claimed:            {}", report.claimed);
        println!("  stale charges:      {}", report.stale);
        println!("  presented:          {}", report.presented);
        println!("  paid:               {}", report.paid);
        println!("  retry scheduled:    {}", report.retry_scheduled);
        println!("  unpaid:             {}", report.unpaid);
        println!("  regularizations:    {}", report.regularizations);
        println!("  skipped:            {}", report.skipped);
        println!("  transient failures: {}", report.transient_failures);
        println!("  reconciled:         {}", report.reconciled);
        println!("  errors:             {}", report.errors);
        println!("  interrupted:        {}", report.interrupted);
        println!("  left due:           {}", report.left_due);
        println!("Autopay (open invoices due, customers with autopay on):");
        let a = report.autopay;
        println!("  examined:           {}", a.examined);
        println!("  presented:          {}", a.presented);
        println!("  paid:               {}", a.paid);
        println!("  refused:            {}", a.refused);
        println!("  outcome unknown:    {}", a.unknown);
        println!("  skipped:            {}", a.skipped);
        println!("  SEPA debits:        {}", a.collections);
        println!("  errors:             {}", a.errors);
        if let Some(sepa) = sepa {
            println!("SEPA collections as of {}:", args.as_of);
            println!("  pre-notified:       {}", sepa.prenotified);
            println!("  postponed:          {}", sepa.postponed);
            println!("  presented:          {}", sepa.presented);
            println!("  covered:            {}", sepa.covered);
            println!("  expired mandates:   {}", sepa.expired_mandates);
            println!("  cancelled:          {}", sepa.cancelled);
            println!("  errors:             {}", sepa.errors);
        }
        if let Some(refunds) = refunds {
            print_refunds(&refunds);
        }
    }
    explain(
        ending,
        report.left_due,
        "due instalments",
        report.held_elsewhere,
        report.held_until,
    );
    if let Some(refunds) = refunds {
        explain(
            refunds.ending(),
            refunds.left_pending,
            "pending refunds",
            refunds.held_elsewhere,
            refunds.held_until,
        );
    }
    ExitCode::from(ending.exit_code())
}

fn print_refunds(refunds: &RefundReport) {
    println!("Refunds:");
    println!("  claimed:            {}", refunds.claimed);
    println!("  paid:               {}", refunds.paid);
    println!("  failed:             {}", refunds.failed);
    println!("  transient failures: {}", refunds.transient_failures);
    println!("  errors:             {}", refunds.errors);
    println!("  interrupted:        {}", refunds.interrupted);
    println!("  parts sent:         {}", refunds.parts_sent);
    println!("  parts found:        {}", refunds.parts_found);
    println!("  left pending:       {}", refunds.left_pending);
}

/// Says on standard error why a run did not finish its work.
fn explain(
    ending: Ending,
    left: u64,
    what: &str,
    held: u64,
    held_until: Option<chrono::DateTime<chrono::Utc>>,
) {
    match ending {
        Ending::Stopped => {
            eprintln!(
                "guichet: stopped by a signal; {left} {what} left; what this run held was released"
            );
        }
        Ending::Unfinished if left > 0 => {
            eprintln!("guichet: {left} {what} left unsettled");
            if let Some(until) = held_until.filter(|_| held > 0) {
                eprintln!(
                    "guichet: {held} of them are claimed by another run (possibly dead) until {}",
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
        Ending::Unfinished => eprintln!("guichet: some items failed (see the log); run again"),
        Ending::Done | Ending::Failed => {}
    }
}

fn refunds_run(args: &RefundArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let stop = Stop::on_signals()?;
        let secret = guichet_api::config::secret_key(
            &args.secret.secret_key,
            args.secret.env,
            &args.db.data_dir,
        )?;
        let store = open_store(&args.db)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let gateway = guichet_jobs::debit::gateway(
            args.payment_gateway,
            store.clone(),
            &secret,
            clock.clone(),
        );
        RefundRun::new(store, gateway, clock).run_until(stop.flag())
    })();
    let report = match result {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    if args.json {
        let json = serde_json::json!({"ending": report.ending(), "refunds": report});
        println!("{json}");
    } else {
        print_refunds(&report);
    }
    explain(
        report.ending(),
        report.left_pending,
        "pending refunds",
        report.held_elsewhere,
        report.held_until,
    );
    ExitCode::from(report.ending().exit_code())
}

fn webhooks_run(args: &WebhookJobArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let stop = Stop::on_signals()?;
        let secret = guichet_api::config::secret_key(
            &args.secret.secret_key,
            args.secret.env,
            &args.db.data_dir,
        )?;
        let store = open_store(&args.db)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        guichet_jobs::webhooks::WebhookRun::new(
            store,
            clock,
            guichet_jobs::notify::OutboxKey::derive(&secret),
            args.webhooks.dispatcher(),
            Arc::default(),
        )
        .run_until(stop.flag())
    })();
    let report = match result {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    if args.json {
        let json = serde_json::json!({"ending": report.ending(), "webhooks": report});
        println!("{json}");
    } else {
        println!("webhooks:");
        println!("  claimed:            {}", report.claimed);
        println!("  succeeded:          {}", report.succeeded);
        println!("  retrying:           {}", report.retrying);
        println!("  failed:             {}", report.failed);
        println!("  interrupted:        {}", report.interrupted);
        println!("  lost:               {}", report.lost);
        println!("  endpoints disabled: {}", report.endpoints_disabled);
        println!("  left pending:       {}", report.left_pending);
    }
    explain(
        report.ending(),
        report.left_pending,
        "due webhook deliveries",
        report.held_elsewhere,
        report.held_until,
    );
    ExitCode::from(report.ending().exit_code())
}

fn consent_expiry_run(args: &ConsentExpiryArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let stop = Stop::on_signals()?;
        let store = open_store(&args.db)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        guichet_jobs::consents::ConsentExpiry::new(store, clock)
            .with_batch(args.batch)
            .run_until(&stop)
            .map_err(|e| e.to_string())
    })();
    let report = match result {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    if args.json {
        let json = serde_json::json!({"ending": report.ending(), "consents": report});
        println!("{json}");
    } else {
        println!("consent expiry:");
        println!("  expired:            {}", report.expired);
        println!("  interrupted:        {}", report.interrupted);
    }
    if report.ending() == Ending::Stopped {
        eprintln!("guichet: stopped by a signal; the consents left are expired by the next run");
    }
    ExitCode::from(report.ending().exit_code())
}

fn booking_reminders_run(args: &BookingRemindersArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let result = (|| {
        let stop = Stop::on_signals()?;
        let store = open_store(&args.db)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        guichet_jobs::bookings::BookingReminders::new(store, clock)
            .with_batch(args.batch)
            .run_until(&stop)
            .map_err(|e| e.to_string())
    })();
    let report = match result {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    if args.json {
        let json = serde_json::json!({"ending": report.ending(), "reminders": report});
        println!("{json}");
    } else {
        println!("booking reminders:");
        println!("  reminded:           {}", report.reminded);
        println!("  messages:           {}", report.messages);
        println!("  interrupted:        {}", report.interrupted);
    }
    if report.ending() == Ending::Stopped {
        eprintln!("guichet: stopped by a signal; the reminders left go with the next run");
    }
    ExitCode::from(report.ending().exit_code())
}
