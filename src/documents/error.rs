//! `ExtractError`: why a file's text could not be read, naming the file.

use std::path::PathBuf;

/// What Hearth can read, said in errors about what it cannot.
pub(crate) const READABLE: &str = "Hearth reads UTF-8 text, Markdown and PDF";

/// Bytes as MiB with one decimal, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },

    #[error(
        "{path} is {size} bytes ({}); the limit for a document is {limit} bytes ({})",
        mib(*size),
        mib(*limit)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error("{path} is empty or holds only whitespace; there is no text to attach")]
    Empty { path: PathBuf },

    #[error("{path} looks like a binary file ({reason}); {READABLE}")]
    Binary { path: PathBuf, reason: String },

    #[error("{path} is UTF-16 text; save it as UTF-8 and attach it again ({READABLE})")]
    Utf16 { path: PathBuf },

    #[error("{path}: not UTF-8 text at byte {offset}; {READABLE}")]
    NotUtf8 { path: PathBuf, offset: u64 },

    #[error("{path} is not a readable PDF ({detail})")]
    PdfDamaged { path: PathBuf, detail: String },

    #[error(
        "{path} is a password-protected PDF; Hearth cannot read it — \
         save an unprotected copy and attach that"
    )]
    PdfEncrypted { path: PathBuf },

    #[error(
        "{path}: this PDF has no text layer (scanned?); its {pages} page(s) hold only images or \
         drawings — run OCR on it first (for example with ocrmypdf) and attach the result"
    )]
    PdfNoText { path: PathBuf, pages: usize },

    #[error("{path} is a PDF, and this build of Hearth has no PDF support (cargo feature `pdf`)")]
    PdfUnsupported { path: PathBuf },
}
