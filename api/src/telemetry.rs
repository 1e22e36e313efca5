//! Structured logs with `tracing`: text for people, JSON for machines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. The filter comes from `GUICHET_LOG`
/// (e.g. `debug`, `guichet_api=debug,info`), default `info` with the
/// server framework's own lines at `warn`. An unreadable filter is reported
/// and the default used.
pub fn init(format: LogFormat) {
    let default = || EnvFilter::new("info,actix_server=warn");
    let (filter, bad) = match std::env::var("GUICHET_LOG") {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (
                default(),
                Some(format!("GUICHET_LOG={spec:?} ignored: {e}")),
            ),
        },
        Err(_) => (default(), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Some(message) = bad {
        tracing::warn!("{message}");
    }
}
