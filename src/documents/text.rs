//! Bytes of a text file → the text: UTF-8 checked, a BOM stripped, line ends normalised to LF,
//! binary files and UTF-16 recognised so the error says what the file is.

/// How much of the start of a file is inspected for control characters.
pub(crate) const SNIFF_BYTES: usize = 8 * 1024;
/// Share of control bytes in the sniffed start above which a file is taken as binary. Text
/// holds a few (tabs, form feeds, ANSI escapes in logs); binary formats hold many.
const MAX_CONTROL_SHARE: f64 = 0.10;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why bytes are not usable text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TextProblem {
    Empty,
    Binary(String),
    Utf16,
    /// Byte offset in the file of the first byte that is not UTF-8.
    NotUtf8(u64),
}

/// A control byte that text files do not normally hold.
fn is_odd_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f
}

/// Why `bytes` look binary, if they do: a NUL byte anywhere, or many control bytes at the start.
pub(crate) fn binary_reason(bytes: &[u8]) -> Option<String> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Some(format!("it holds a NUL byte at byte {at}"));
    }
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let controls = head.iter().filter(|&&b| is_odd_control(b)).count();
    if !head.is_empty() && controls as f64 > MAX_CONTROL_SHARE * head.len() as f64 {
        return Some(format!(
            "{controls} of its first {} bytes are control characters",
            head.len()
        ));
    }
    None
}

/// The text of a text file's bytes.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, TextProblem> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(TextProblem::Utf16);
    }
    let (body, skipped) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, UTF8_BOM.len()),
        None => (bytes, 0),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(TextProblem::Empty);
    }
    if let Some(reason) = binary_reason(body) {
        return Err(TextProblem::Binary(reason));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| TextProblem::NotUtf8((e.valid_up_to() + skipped) as u64))?;
    let text = normalize_line_ends(text);
    if text.trim().is_empty() {
        return Err(TextProblem::Empty);
    }
    Ok(text)
}

/// CRLF and lone CR (old Mac files) become LF.
pub(crate) fn normalize_line_ends(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_stripped_and_line_ends_normalised() {
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFa\r\nb\rc\n").unwrap(),
            "a\nb\nc\n"
        );
        assert_eq!(decode_text("é\tü".as_bytes()).unwrap(), "é\tü");
    }

    #[test]
    fn problems_are_named() {
        assert_eq!(decode_text(b""), Err(TextProblem::Empty));
        assert_eq!(decode_text(b"\xEF\xBB\xBF \n\t"), Err(TextProblem::Empty));
        // Unicode whitespace only.
        assert_eq!(
            decode_text("\u{3000}\u{a0}".as_bytes()),
            Err(TextProblem::Empty)
        );
        assert_eq!(decode_text(b"\xFF\xFEh\0i\0"), Err(TextProblem::Utf16));
        assert_eq!(decode_text(b"abc\xE9def"), Err(TextProblem::NotUtf8(3)));
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFab\xC3"),
            Err(TextProblem::NotUtf8(5))
        );
        assert!(
            matches!(decode_text(b"ab\0cd"), Err(TextProblem::Binary(r)) if r.contains("byte 2"))
        );
        let controls: Vec<u8> = (0..100)
            .map(|i| if i % 5 == 0 { 0x01 } else { b'a' })
            .collect();
        assert!(matches!(
            decode_text(&controls),
            Err(TextProblem::Binary(_))
        ));
        let few: Vec<u8> = (0..100)
            .map(|i| if i % 20 == 0 { 0x1b } else { b'a' })
            .collect();
        assert!(decode_text(&few).is_ok(), "ANSI escapes in a log are text");
    }
}
