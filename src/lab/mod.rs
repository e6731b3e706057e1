//! The test lab's shared operations (development features only), behind the admin API,
//! the admin page, the CLI and `TestIdp` alike.

pub mod api_check;

use crate::clock::{ClockChange, ClockView, real_now};
use crate::store::{Store, StoreError};

/// Why the clock is refused without development features.
pub const CLOCK_DEV_ONLY: &str = "the test clock is a test-lab feature, on only with development features: \
     start the server with --dev (or --dev-login, --ephemeral, LANYARD_DEV=true)";

/// Why a clock change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `change` to the clock stored for every server on the database (read afresh, so
/// that two changes from two replicas compose) and returns the clock as it then is.
pub async fn set_clock(store: &Store, change: &ClockChange) -> Result<ClockView, ClockError> {
    let real = real_now();
    let current = store.clock_setting().await?;
    let next = change.apply_to(current, real).map_err(ClockError::Invalid)?;
    store.set_clock_setting(next).await?;
    tracing::info!(offset_seconds = next.offset_seconds, frozen_at = ?next.frozen_at, "test clock set");
    Ok(ClockView::of(next, real))
}
