//! `download_model`'s core against a local HTTP server on 127.0.0.1 (std `TcpListener`, one
//! thread): progress, resume with `Range` into the `.part` file, the SHA-256 check, cancel,
//! and HTTP errors.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

mod common;

use common::ScratchDir;
use hearth_desktop::download::{self, DownloadError};
use sha2::{Digest, Sha256};

const SIZE: usize = 300_000;

fn body() -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend((0..SIZE - 4).map(|i| (i * 7 % 251) as u8));
    v
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Server {
    base: String,
    /// The Range header of each request ("" when none).
    ranges: Arc<Mutex<Vec<String>>>,
}

/// Serves `/model.gguf`; the first `cut_first` responses stop after half the body.
fn serve(cut_first: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ranges);
    let served = AtomicUsize::new(0);
    std::thread::spawn(move || {
        let data = body();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut range = String::new();
            reader.read_line(&mut request).ok();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range:") {
                    range = v.trim().to_string();
                }
            }
            seen.lock().unwrap().push(range.clone());
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .split('?')
                .next()
                .unwrap_or("");
            if !request.starts_with("GET ") || path != "/model.gguf" {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            }
            let start: usize = range
                .strip_prefix("bytes=")
                .and_then(|r| r.trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            let part = &data[start.min(data.len())..];
            let head = if start > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
                    part.len(),
                    data.len() - 1,
                    data.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    part.len()
                )
            };
            let _ = stream.write_all(head.as_bytes());
            let n = served.fetch_add(1, Ordering::SeqCst);
            let send = if n < cut_first {
                &part[..part.len() / 2]
            } else {
                part
            };
            let _ = stream.write_all(send);
            let _ = stream.flush();
        }
    });
    Server { base, ranges }
}

async fn get(
    url: &str,
    dir: &std::path::Path,
    sha256: Option<&str>,
    cancel: &AtomicBool,
) -> (
    Result<std::path::PathBuf, DownloadError>,
    Vec<(u64, Option<u64>)>,
) {
    let target = download::target(url, dir).unwrap();
    let client = download::client().unwrap();
    let mut seen = Vec::new();
    let result = download::download(&client, &target, sha256, cancel, &mut |r, t| {
        seen.push((r, t))
    })
    .await;
    (result, seen)
}

#[tokio::test]
async fn downloads_with_progress_and_checks_the_sha256() {
    let server = serve(0);
    let dir = ScratchDir::new();
    let url = format!("{}/model.gguf?download=true", server.base);
    let (result, progress) = get(
        &url,
        dir.path(),
        Some(&sha(&body()).to_uppercase()),
        &AtomicBool::new(false),
    )
    .await;
    let path = result.unwrap();
    assert_eq!(path, dir.path().join("model.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), body());
    assert!(!dir.path().join("model.gguf.part").exists());
    assert_eq!(progress.last(), Some(&(SIZE as u64, Some(SIZE as u64))));
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress only grows"
    );
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_a_range_request() {
    let server = serve(1);
    let dir = ScratchDir::new();
    let url = format!("{}/model.gguf", server.base);
    let (first, _) = get(&url, dir.path(), None, &AtomicBool::new(false)).await;
    assert!(first.is_err(), "the connection was cut: {first:?}");
    let part = dir.path().join("model.gguf.part");
    let have = std::fs::metadata(&part).unwrap().len();
    assert!(
        have > 0 && have < SIZE as u64,
        "partial file of {have} bytes"
    );

    let (second, progress) = get(
        &url,
        dir.path(),
        Some(&sha(&body())),
        &AtomicBool::new(false),
    )
    .await;
    let path = second.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body());
    assert_eq!(
        server.ranges.lock().unwrap().last().cloned(),
        Some(format!("bytes={have}-"))
    );
    assert_eq!(
        progress.first(),
        Some(&(have, Some(SIZE as u64))),
        "progress starts from the resumed part"
    );
}

#[tokio::test]
async fn a_wrong_checksum_deletes_the_download() {
    let server = serve(0);
    let dir = ScratchDir::new();
    let (result, _) = get(
        &format!("{}/model.gguf", server.base),
        dir.path(),
        Some(&"0".repeat(64)),
        &AtomicBool::new(false),
    )
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&sha(&body())));
    assert!(!dir.path().join("model.gguf").exists());
    assert!(!dir.path().join("model.gguf.part").exists());
}

#[tokio::test]
async fn cancel_keeps_the_partial_file_and_http_errors_are_plain() {
    let server = serve(0);
    let dir = ScratchDir::new();
    let (result, _) = get(
        &format!("{}/model.gguf", server.base),
        dir.path(),
        None,
        &AtomicBool::new(true),
    )
    .await;
    assert!(
        matches!(result, Err(DownloadError::Cancelled)),
        "{result:?}"
    );
    assert!(!dir.path().join("model.gguf").exists());

    let (result, _) = get(
        &format!("{}/missing.gguf", server.base),
        dir.path(),
        None,
        &AtomicBool::new(false),
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
    let bad = download::target("ftp://example.com/x.gguf", dir.path())
        .unwrap_err()
        .to_string();
    assert!(bad.contains("only http:// and https://"), "{bad}");
}
