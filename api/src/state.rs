//! What handlers share.

use std::sync::Arc;

use guichet_domain::Clock;
use guichet_store::Store;

use crate::metrics::Metrics;

/// The application state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}
