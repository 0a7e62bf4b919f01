//! A PDF's text layer, page by page, through `pdf-extract` (on `lopdf`).
//!
//! `pdf-extract` panics on some malformed input (it unwraps a lot while decoding fonts and
//! content streams), so the whole extraction runs inside `catch_unwind` and a panic becomes
//! "damaged PDF". The panic message still goes through the process's panic hook (stderr by
//! default). A page that fails is a failure of the whole file, never a silently missing page.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{Document, PlainTextOutput};

use super::text::normalize_line_ends;

/// Separates pages in the joined text.
const PAGE_SEPARATOR: &str = "\n\n";

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PdfProblem {
    Damaged(String),
    Encrypted,
    NoText { pages: usize },
}

/// The PDF's text, pages joined by a blank line, and each page's char range in it.
pub(crate) fn pdf_text(bytes: &[u8]) -> Result<(String, Vec<(usize, usize)>), PdfProblem> {
    let pages = catch_unwind(AssertUnwindSafe(|| page_texts(bytes))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(PdfProblem::Damaged(format!(
            "the PDF reader failed: {message}"
        )))
    })?;
    join_pages(pages)
}

fn page_texts(bytes: &[u8]) -> Result<Vec<String>, PdfProblem> {
    let mut doc = Document::load_mem(bytes).map_err(|e| match e {
        pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword => {
            PdfProblem::Encrypted
        }
        other => PdfProblem::Damaged(other.to_string()),
    })?;
    // An owner-password-only PDF opens with the empty user password.
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(PdfProblem::Encrypted);
    }
    let numbers: Vec<u32> = doc.get_pages().into_keys().collect();
    if numbers.is_empty() {
        return Err(PdfProblem::Damaged("it has no pages".into()));
    }
    let mut pages = Vec::with_capacity(numbers.len());
    for number in numbers {
        let mut text = String::new();
        let mut output = PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(&doc, &mut output, number)
            .map_err(|e| PdfProblem::Damaged(format!("page {number}: {e}")))?;
        pages.push(text);
    }
    Ok(pages)
}

/// A page's text as stored: LF line ends, control characters other than tab and LF dropped
/// (some fonts map glyphs to NUL), surrounding whitespace trimmed.
fn clean_page(raw: &str) -> String {
    normalize_line_ends(raw)
        .chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect::<String>()
        .trim()
        .to_string()
}

fn join_pages(raw_pages: Vec<String>) -> Result<(String, Vec<(usize, usize)>), PdfProblem> {
    let mut text = String::new();
    let mut ranges = Vec::with_capacity(raw_pages.len());
    let mut chars = 0;
    for (i, raw) in raw_pages.iter().enumerate() {
        if i > 0 {
            text.push_str(PAGE_SEPARATOR);
            chars += PAGE_SEPARATOR.len();
        }
        let page = clean_page(raw);
        let start = chars;
        chars += page.chars().count();
        text.push_str(&page);
        ranges.push((start, chars));
    }
    if ranges.iter().all(|(start, end)| start == end) {
        return Err(PdfProblem::NoText {
            pages: ranges.len(),
        });
    }
    Ok((text, ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_join_with_char_ranges() {
        let (text, ranges) =
            join_pages(vec!["\n héllo\r\n".into(), " \n".into(), "wörld\0!".into()]).unwrap();
        assert_eq!(text, "héllo\n\n\n\nwörld!");
        assert_eq!(ranges, [(0, 5), (7, 7), (9, 15)]);
        let page = |(s, e): (usize, usize)| text.chars().skip(s).take(e - s).collect::<String>();
        assert_eq!(page(ranges[2]), "wörld!");
        assert_eq!(
            join_pages(vec![" ".into(), "\n".into()]),
            Err(PdfProblem::NoText { pages: 2 })
        );
    }

    #[test]
    fn garbage_is_damaged_not_a_panic() {
        for bytes in [
            &b""[..],
            b"%PDF-1.4\n",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog",
            b"\xff\x00",
        ] {
            assert!(
                matches!(pdf_text(bytes), Err(PdfProblem::Damaged(_))),
                "{bytes:?}"
            );
        }
    }
}
