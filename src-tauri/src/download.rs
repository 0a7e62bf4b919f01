//! Model download by URL: HTTP(S) into `<name>.part`, resumed with a `Range` request when a
//! partial file is there, progress as bytes arrive, an optional SHA-256 check, and
//! cancellation (the partial file stays for the next try). The finished file is renamed into
//! place only after the checks pass.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Progress is reported at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for the next bytes before giving up (the partial file is kept).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url:?} is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("only http:// and https:// URLs can be downloaded (got {scheme}://)")]
    Scheme { scheme: String },
    #[error("the URL does not name a file (it should end in a file name such as model.gguf)")]
    NoFileName,
    #[error("the SHA-256 checksum must be 64 hexadecimal characters")]
    BadChecksum,
    #[error("the server answered {status} for {url}")]
    Status { status: StatusCode, url: String },
    #[error("the download failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("could not write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server sent {received} bytes but announced {expected}; try again to resume")]
    Incomplete { received: u64, expected: u64 },
    #[error("the resumed range starts at {got}, not at {wanted}")]
    BadRange { wanted: u64, got: String },
    #[error(
        "the file's SHA-256 is {actual}, not the expected {expected}; the download was deleted"
    )]
    ChecksumMismatch { expected: String, actual: String },
    #[error("the download was cancelled (the partial file is kept and resumes next time)")]
    Cancelled,
}

/// The `download_model` channel's events.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum DownloadEvent {
    Progress {
        received_bytes: u64,
        total_bytes: Option<u64>,
    },
    Done {
        path: String,
    },
    Error {
        message: String,
    },
}

/// Where a URL's file goes, and its partial file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: reqwest::Url,
    pub path: PathBuf,
    pub part: PathBuf,
}

/// Checks the URL and picks the destination: the URL path's last segment, reduced to safe
/// characters, inside `dir`.
pub fn target(url: &str, dir: &Path) -> Result<Target, DownloadError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| DownloadError::BadUrl {
        url: url.into(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DownloadError::Scheme {
            scheme: parsed.scheme().into(),
        });
    }
    let last = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let decoded = url::form_urlencoded::parse(last.as_bytes())
        .map(|(k, v)| format!("{k}{v}"))
        .collect::<String>();
    let name: String = decoded
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_start_matches('.').to_string();
    if name.is_empty() || name.chars().all(|c| c == '_') {
        return Err(DownloadError::NoFileName);
    }
    Ok(Target {
        url: parsed,
        path: dir.join(&name),
        part: dir.join(format!("{name}.part")),
    })
}

/// Normalises an expected checksum (hex, any case, surrounding spaces).
pub fn parse_sha256(s: &str) -> Result<String, DownloadError> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(DownloadError::BadChecksum)
    }
}

pub fn client() -> Result<reqwest::Client, DownloadError> {
    Ok(reqwest::Client::builder()
        .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(READ_TIMEOUT)
        .build()?)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Downloads `target.url` to `target.path`. `progress(received, total)` sees the bytes on disk
/// (including a resumed part) and the full size when the server says it.
pub async fn download(
    client: &reqwest::Client,
    target: &Target,
    sha256: Option<&str>,
    cancel: &AtomicBool,
    progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
) -> Result<PathBuf, DownloadError> {
    let expected = sha256.map(parse_sha256).transpose()?;
    if let Some(dir) = target.path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    }
    let mut hasher = Sha256::new();
    let mut have = hash_existing(&target.part, &mut hasher).await?;

    let mut request = client.get(target.url.clone());
    if have > 0 {
        request = request.header(RANGE, format!("bytes={have}-"));
    }
    let response = request.send().await?;
    let status = response.status();
    let append = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            let range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if range_start(range) != Some(have) {
                return Err(DownloadError::BadRange {
                    wanted: have,
                    got: range.into(),
                });
            }
            true
        }
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            // The part file is already whole (or longer than the file): start over.
            tokio::fs::remove_file(&target.part)
                .await
                .map_err(io(&target.part))?;
            return Box::pin(download(client, target, sha256, cancel, progress)).await;
        }
        s if s.is_success() => false,
        s => {
            return Err(DownloadError::Status {
                status: s,
                url: target.url.to_string(),
            });
        }
    };
    if !append {
        // The server sent the whole file: drop what the part file had.
        have = 0;
        hasher = Sha256::new();
    }
    let total = response.content_length().map(|n| n + have);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&target.part)
        .await
        .map_err(io(&target.part))?;
    progress(have, total);
    let mut last = Instant::now();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        if cancel.load(Ordering::Relaxed) {
            file.flush().await.map_err(io(&target.part))?;
            return Err(DownloadError::Cancelled);
        }
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // Finish the writes in flight (tokio runs them on a blocking thread), so the
                // .part file's length is final and a resume asks for the right range.
                file.flush().await.map_err(io(&target.part))?;
                return Err(e.into());
            }
        };
        file.write_all(&chunk).await.map_err(io(&target.part))?;
        hasher.update(&chunk);
        have += chunk.len() as u64;
        if last.elapsed() >= PROGRESS_EVERY {
            progress(have, total);
            last = Instant::now();
        }
    }
    file.flush().await.map_err(io(&target.part))?;
    file.sync_all().await.map_err(io(&target.part))?;
    drop(file);
    if cancel.load(Ordering::Relaxed) {
        return Err(DownloadError::Cancelled);
    }
    progress(have, total);
    if let Some(expected_total) = total.filter(|&t| t != have) {
        return Err(DownloadError::Incomplete {
            received: have,
            expected: expected_total,
        });
    }
    let actual = hex(&hasher.finalize());
    if let Some(expected) = expected.filter(|e| *e != actual) {
        tokio::fs::remove_file(&target.part)
            .await
            .map_err(io(&target.part))?;
        return Err(DownloadError::ChecksumMismatch { expected, actual });
    }
    tokio::fs::rename(&target.part, &target.path)
        .await
        .map_err(io(&target.path))?;
    Ok(target.path.clone())
}

/// Feeds an existing partial file to the hash; returns its length (0 when there is none).
async fn hash_existing(part: &Path, hasher: &mut Sha256) -> Result<u64, DownloadError> {
    let mut file = match tokio::fs::File::open(part).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(part)(e)),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(io(part))?;
        if n == 0 {
            return Ok(len);
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header.
fn range_start(header: &str) -> Option<u64> {
    header
        .trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_a_safe_file_name_from_the_url() {
        let dir = Path::new("/models");
        let t = target(
            "https://huggingface.co/a/b/resolve/main/tiny%20model.gguf?download=true",
            dir,
        )
        .unwrap();
        assert_eq!(t.path, dir.join("tiny_model.gguf"));
        assert_eq!(t.part, dir.join("tiny_model.gguf.part"));
        assert!(matches!(
            target("file:///etc/passwd", dir),
            Err(DownloadError::Scheme { .. })
        ));
        assert!(matches!(
            target("https://example.com/", dir),
            Err(DownloadError::NoFileName)
        ));
        assert!(
            matches!(target("https://example.com/..%2F..%2F.bashrc", dir), Ok(t) if t.path.parent() == Some(dir))
        );
        assert!(matches!(
            target("not a url", dir),
            Err(DownloadError::BadUrl { .. })
        ));
    }

    #[test]
    fn checksums_and_ranges_parse() {
        assert!(parse_sha256(&"AB".repeat(32)).is_ok());
        assert!(parse_sha256("abc").is_err());
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
    }
}
