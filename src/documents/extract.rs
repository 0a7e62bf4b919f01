//! `extract`: a file's text, with its kind (plain text, Markdown, PDF) and, for a PDF, the char
//! range of each page.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::ExtractError;
use super::text::{TextProblem, decode_text};

/// Largest file read, in bytes (50 MiB); checked from metadata before reading.
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

/// What kind of file the text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    Plain,
    Markdown,
    Pdf,
}

/// The text of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedText {
    /// UTF-8, LF line ends, no BOM; never blank.
    pub text: String,
    pub kind: DocumentKind,
    /// For a PDF: each page's char range `(start, end)` in `text`, in page order (an empty
    /// page has `start == end`); pages are separated by a blank line. `None` for text files.
    pub pages: Option<Vec<(usize, usize)>>,
}

/// The kind a file is read as: a PDF by its `.pdf` extension or its `%PDF-` header; Markdown by
/// `.md`/`.markdown`; anything else (`.txt`, no extension, `.csv`, source code...) as plain text,
/// which the UTF-8 and binary checks then accept or refuse by content.
fn kind_of(path: &Path, head: &[u8]) -> DocumentKind {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pdf") => DocumentKind::Pdf,
        _ if head.starts_with(b"%PDF-") => DocumentKind::Pdf,
        Some("md" | "markdown" | "mdown" | "mkd") => DocumentKind::Markdown,
        _ => DocumentKind::Plain,
    }
}

/// Reads the text of the file at `path`: UTF-8 text or Markdown (a BOM stripped, CRLF → LF) or
/// a PDF's text layer. Refuses, with an error naming the file, anything over
/// [`MAX_FILE_BYTES`] (before reading it), empty or whitespace-only text, binary files, UTF-16,
/// invalid UTF-8 (naming the byte offset), and PDFs that are damaged, password-protected or
/// have no text layer.
pub fn extract(path: impl AsRef<Path>) -> Result<ExtractedText, ExtractError> {
    let path = path.as_ref();
    let bytes = read_bounded(path)?;
    let kind = kind_of(path, &bytes);
    if kind == DocumentKind::Pdf {
        return extract_pdf(path, &bytes);
    }
    let text = decode_text(&bytes).map_err(|problem| {
        let path = path.to_path_buf();
        match problem {
            TextProblem::Empty => ExtractError::Empty { path },
            TextProblem::Binary(reason) => ExtractError::Binary { path, reason },
            TextProblem::Utf16 => ExtractError::Utf16 { path },
            TextProblem::NotUtf8(offset) => ExtractError::NotUtf8 { path, offset },
        }
    })?;
    Ok(ExtractedText {
        text,
        kind,
        pages: None,
    })
}

/// The file's bytes, refusing a file over the limit before reading it, and never reading more
/// than the limit + 1 bytes (a file that grows while it is read is still refused).
fn read_bounded(path: &Path) -> Result<Vec<u8>, ExtractError> {
    let io = |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| ExtractError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_BYTES,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ExtractError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let file = File::open(path).map_err(io)?;
    // The capacity is bounded by the check above.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(feature = "pdf")]
fn extract_pdf(path: &Path, bytes: &[u8]) -> Result<ExtractedText, ExtractError> {
    use super::pdf::{PdfProblem, pdf_text};
    let path = path.to_path_buf();
    let (text, pages) = pdf_text(bytes).map_err(|problem| match problem {
        PdfProblem::Damaged(detail) => ExtractError::PdfDamaged { path, detail },
        PdfProblem::Encrypted => ExtractError::PdfEncrypted { path },
        PdfProblem::NoText { pages } => ExtractError::PdfNoText { path, pages },
    })?;
    Ok(ExtractedText {
        text,
        kind: DocumentKind::Pdf,
        pages: Some(pages),
    })
}

#[cfg(not(feature = "pdf"))]
fn extract_pdf(path: &Path, _bytes: &[u8]) -> Result<ExtractedText, ExtractError> {
    Err(ExtractError::PdfUnsupported {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_by_extension_then_header() {
        let k = |name: &str, head: &[u8]| kind_of(Path::new(name), head);
        assert_eq!(k("a.PDF", b""), DocumentKind::Pdf);
        assert_eq!(k("a.bin", b"%PDF-1.4"), DocumentKind::Pdf);
        assert_eq!(k("README.md", b"# hi"), DocumentKind::Markdown);
        assert_eq!(k("notes", b"hi"), DocumentKind::Plain);
        assert_eq!(k("notes.txt", b"hi"), DocumentKind::Plain);
        assert_eq!(k("data.csv", b"a,b"), DocumentKind::Plain);
    }
}
