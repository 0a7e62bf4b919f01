//! Turning a user's search text into SQL parameters that match it literally, as a substring.

/// Queries at least this many characters long use the FTS5 trigram index; shorter ones (which
/// have no trigram) fall back to a LIKE scan with the same substring meaning.
pub(crate) const MIN_FTS_CHARS: usize = 3;

/// `%query%` for `LIKE ?1 ESCAPE '\'`, with `\`, `%` and `_` escaped so they match themselves.
pub(crate) fn like_pattern(query: &str) -> String {
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for c in query.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The query as one FTS5 string (a phrase): no operator, column filter or `*` inside it has any
/// effect. `None` when it is too short for the trigram index.
pub(crate) fn fts_phrase(query: &str) -> Option<String> {
    if query.chars().count() < MIN_FTS_CHARS {
        return None;
    }
    Some(format!("\"{}\"", query.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards_and_the_escape_character() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern(""), "%%");
    }

    #[test]
    fn fts_phrase_quotes_and_needs_three_characters() {
        assert_eq!(fts_phrase("ab"), None);
        assert_eq!(fts_phrase("né"), None);
        assert_eq!(fts_phrase("a\"b OR c*").as_deref(), Some("\"a\"\"b OR c*\""));
    }
}
