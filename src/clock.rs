//! The wall clock, read in one place.

/// Seconds since the Unix epoch: every timestamp in the schema and in tokens.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
