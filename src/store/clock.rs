//! Timestamps: stored as Unix milliseconds (UTC), shown as RFC 3339.

use jiff::Timestamp;

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// RFC 3339 text for a stored time, always with three fractional digits so that the strings
/// sort like the times. A value outside jiff's range (only a tampered row can hold one) shows as
/// the Unix epoch rather than failing the read.
pub(crate) fn rfc3339(ms: i64) -> String {
    format!(
        "{:.3}",
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
    )
}

/// Marks conversation `id` as changed now. `updated_at` becomes now, but strictly after every
/// stored value, so "newest first" is a total order even when two changes land in the same
/// millisecond or the system clock steps back. Returns false when there is no such conversation.
pub(crate) async fn touch(conn: &mut sqlx::SqliteConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE conversations
         SET updated_at = MAX(?1, (SELECT MAX(updated_at) FROM conversations) + 1)
         WHERE id = ?2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixed_width_utc_with_milliseconds() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_120),
            "2023-11-14T22:13:20.120Z"
        );
        assert_eq!(super::rfc3339(i64::MAX), "1970-01-01T00:00:00.000Z");
    }
}
