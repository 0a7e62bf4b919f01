//! hearth::documents: extraction of text, Markdown and PDF files (PDFs written by the test
//! itself), every refusal naming its problem, the chunker's properties on random and
//! pathological inputs, and a planted fact found through chunk → store → BM25 search.

use std::io::Write;
use std::path::{Path, PathBuf};

use hearth::documents::{
    ChunkSpec, DEFAULT_OVERLAP_CHARS, DEFAULT_TARGET_CHARS, DocumentKind, ExtractError,
    MAX_FILE_BYTES, chunk, extract,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A minimal PDF: one page per entry, each page's content stream as given, Helvetica as /F1,
/// with a correct cross-reference table.
fn pdf(page_streams: &[&str]) -> Vec<u8> {
    let n = page_streams.len();
    // Objects: 1 catalog, 2 pages, 3 font, then (page, content) pairs.
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    for (i, stream) in page_streams.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        write!(out, "{} 0 obj\n{body}\nendobj\n", i + 1).unwrap();
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
    for offset in offsets {
        writeln!(out, "{offset:010} 00000 n ").unwrap();
    }
    write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    )
    .unwrap();
    out
}

fn text_page(line: &str) -> String {
    format!("BT /F1 18 Tf 72 700 Td ({line}) Tj ET")
}

#[cfg_attr(not(feature = "pdf"), allow(dead_code))]
fn chars(text: &str, (start, end): (usize, usize)) -> String {
    text.chars().skip(start).take(end - start).collect()
}

#[test]
fn plain_text_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let txt = write(&dir, "notes.txt", b"\xEF\xBB\xBFline one\r\nline two\r\n");
    let got = extract(&txt).unwrap();
    assert_eq!(got.text, "line one\nline two\n");
    assert_eq!((got.kind, got.pages), (DocumentKind::Plain, None));

    let md = write(
        &dir,
        "README.MD",
        "# Titre\n\nDu *texte* — ünïcödé 😀.\n".as_bytes(),
    );
    let got = extract(&md).unwrap();
    assert_eq!(got.kind, DocumentKind::Markdown);
    assert_eq!(got.text, "# Titre\n\nDu *texte* — ünïcödé 😀.\n");

    let bare = write(&dir, "LICENSE", b"no extension");
    assert_eq!(extract(&bare).unwrap().kind, DocumentKind::Plain);
    let csv = write(&dir, "table.csv", b"a,b\n1,2\n");
    assert_eq!(extract(&csv).unwrap().text, "a,b\n1,2\n");
}

#[test]
fn text_files_that_are_refused_say_why() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.txt", &b""[..]),
        ("blank.md", b" \r\n\t\n"),
        ("bom.txt", b"\xEF\xBB\xBF  "),
    ] {
        let err = extract(write(&dir, name, bytes)).unwrap_err();
        assert!(matches!(err, ExtractError::Empty { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let err = extract(write(&dir, "picture.txt", png)).unwrap_err();
    assert!(matches!(err, ExtractError::Binary { .. }), "{err}");
    assert!(err.to_string().contains("binary"), "{err}");
    let controls: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8 + 1).collect();
    let err = extract(write(&dir, "controls", &controls)).unwrap_err();
    assert!(matches!(err, ExtractError::Binary { .. }), "{err}");

    let err = extract(write(&dir, "latin1.txt", b"caf\xe9 au lait")).unwrap_err();
    assert!(
        matches!(err, ExtractError::NotUtf8 { offset: 3, .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("not UTF-8 text at byte 3")
            && message.contains("Hearth reads UTF-8 text, Markdown and PDF"),
        "{message}"
    );
    // The offset is in the file, counting a BOM.
    let err = extract(write(&dir, "bom.md", b"\xEF\xBB\xBFok \xC3(")).unwrap_err();
    assert!(
        matches!(err, ExtractError::NotUtf8 { offset: 6, .. }),
        "{err}"
    );

    let err = extract(write(&dir, "utf16.txt", b"\xFF\xFEh\0i\0")).unwrap_err();
    assert!(matches!(err, ExtractError::Utf16 { .. }), "{err}");

    let err = extract(dir.path()).unwrap_err();
    assert!(matches!(err, ExtractError::NotAFile { .. }), "{err}");
    let err = extract(dir.path().join("missing.txt")).unwrap_err();
    assert!(matches!(err, ExtractError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.txt"), "{err}");
}

#[test]
fn a_huge_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.txt");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: no data is written, and extract must not read it either.
    file.set_len(MAX_FILE_BYTES + 1).unwrap();
    let err = extract(&path).unwrap_err();
    match &err {
        ExtractError::TooLarge { size, limit, .. } => {
            assert_eq!((*size, *limit), (MAX_FILE_BYTES + 1, MAX_FILE_BYTES));
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&(MAX_FILE_BYTES + 1).to_string()) && message.contains("50.0 MiB"),
        "{message}"
    );
}

#[cfg(feature = "pdf")]
#[test]
fn pdf_text_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = pdf(&[
        &text_page("Hello from page one"),
        "0 0 m 100 100 l S",
        &text_page("Page three says goodbye"),
    ]);
    let got = extract(write(&dir, "report.pdf", &bytes)).unwrap();
    assert_eq!(got.kind, DocumentKind::Pdf);
    let pages = got.pages.clone().unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(chars(&got.text, pages[0]), "Hello from page one");
    assert_eq!(
        pages[1].0, pages[1].1,
        "a page without text is an empty range"
    );
    assert_eq!(chars(&got.text, pages[2]), "Page three says goodbye");
    assert!(pages.windows(2).all(|w| w[0].1 <= w[1].0));

    // Found by its header whatever the name says.
    let got = extract(write(&dir, "actually-a-pdf.txt", &bytes)).unwrap();
    assert_eq!(got.kind, DocumentKind::Pdf);
}

#[cfg(feature = "pdf")]
#[test]
fn pdfs_that_are_refused_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let scanned = pdf(&["0 0 m 100 100 l S", "q 10 0 0 10 0 0 cm Q"]);
    let err = extract(write(&dir, "scan.pdf", &scanned)).unwrap_err();
    assert!(
        matches!(err, ExtractError::PdfNoText { pages: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("this PDF has no text layer (scanned?)"),
        "{err}"
    );

    for (name, bytes) in [
        ("garbage.pdf", b"this is not a pdf at all".to_vec()),
        ("header-only.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec()),
        (
            "noise.pdf",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ] {
        let err = extract(write(&dir, name, &bytes)).unwrap_err();
        assert!(
            matches!(err, ExtractError::PdfDamaged { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[cfg(not(feature = "pdf"))]
#[test]
fn without_the_pdf_feature_a_pdf_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = extract(write(&dir, "a.pdf", &pdf(&[&text_page("hi")]))).unwrap_err();
    assert!(matches!(err, ExtractError::PdfUnsupported { .. }), "{err}");
}

/// Damaged copies of a good PDF (truncated, bytes overwritten) give a result or an error, never
/// a panic out of `extract` (pdf-extract's panics are caught) and never blank text.
#[cfg(feature = "pdf")]
#[test]
fn damaged_pdfs_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = pdf(&[&text_page("Some text to find"), &text_page("More text")]);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let path = dir.path().join("damaged.pdf");
    let mut refused = 0;
    for round in 0..150 {
        let mut bytes = good.clone();
        if round % 3 == 0 {
            bytes.truncate(rng.random_range(0..good.len()));
        } else {
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        match extract(&path) {
            Ok(got) => assert!(!got.text.trim().is_empty()),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0, "some damage must be noticed");
}

/// Checks every documented property of `chunk(text, target, overlap)`.
fn check_chunks(text: &str, target: usize, overlap: usize, chunks: &[ChunkSpec]) {
    let byte_at: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let total = byte_at.len() - 1;
    let context = || format!("target {target}, overlap {overlap}, {total} chars");
    if total == 0 {
        assert!(chunks.is_empty(), "{}", context());
        return;
    }
    let max_len = target.max(1);
    let min_len = max_len - max_len / 2;
    assert_eq!(chunks.first().unwrap().char_start, 0, "{}", context());
    assert_eq!(chunks.last().unwrap().char_end, total, "{}", context());
    for (i, c) in chunks.iter().enumerate() {
        assert!(c.char_start < c.char_end, "chunk {i} empty: {}", context());
        assert_eq!(
            c.text,
            text[byte_at[c.char_start]..byte_at[c.char_end]],
            "chunk {i}: {}",
            context()
        );
        let len = c.char_end - c.char_start;
        assert!(len <= max_len, "chunk {i} is {len} chars: {}", context());
        if i + 1 < chunks.len() {
            assert!(len >= min_len, "chunk {i} is {len} chars: {}", context());
        }
    }
    for (i, pair) in chunks.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.char_start > a.char_start, "chunk {i}: {}", context());
        assert!(b.char_end > a.char_end, "chunk {i}: {}", context());
        assert!(
            b.char_start <= a.char_end,
            "gap after chunk {i}: {}",
            context()
        );
        let shared = a.char_end - b.char_start;
        assert!(
            shared <= overlap,
            "chunks {i}, {} share {shared}: {}",
            i + 1,
            context()
        );
    }
}

fn random_text(rng: &mut ChaCha8Rng) -> String {
    const PIECES: [&str; 14] = [
        "word",
        "éte",
        "😀",
        " ",
        " ",
        "\n",
        "\n\n",
        ". ",
        "? ",
        "。",
        "\t",
        "naïveté",
        "\"Quoted.\" ",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ];
    let n = rng.random_range(0..400);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

#[test]
fn chunk_properties_on_random_text() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for _ in 0..600 {
        let text = random_text(&mut rng);
        let target = rng.random_range(0..200);
        let overlap = rng.random_range(0..300);
        check_chunks(&text, target, overlap, &chunk(&text, target, overlap));
    }
}

#[test]
fn chunk_terminates_on_pathological_text() {
    let mb = 1 << 20;
    let cases = [
        "x".repeat(mb),
        " ".repeat(mb),
        "\n".repeat(mb),
        "é".repeat(mb / 2),
        "。".repeat(mb / 3),
        ". ".repeat(mb / 2),
    ];
    for text in &cases {
        for (target, overlap) in [(DEFAULT_TARGET_CHARS, DEFAULT_OVERLAP_CHARS), (7, 100)] {
            check_chunks(text, target, overlap, &chunk(text, target, overlap));
        }
        // One-char chunks: a chunk per char, so a shorter prefix keeps the test fast.
        let prefix: String = text.chars().take(1 << 16).collect();
        check_chunks(&prefix, 1, 5, &chunk(&prefix, 1, 5));
    }
    let chunks = chunk(&cases[0], 1000, 100);
    assert_eq!(
        chunks.len(),
        (mb - 100).div_ceil(900),
        "hard cuts every 900 new chars"
    );
}

fn filler(rng: &mut ChaCha8Rng, sentences: usize) -> String {
    const WORDS: [&str; 16] = [
        "river", "market", "lantern", "orchard", "harbor", "village", "meadow", "bridge", "winter",
        "festival", "baker", "weaver", "garden", "tower", "road", "mill",
    ];
    let mut out = String::new();
    for s in 0..sentences {
        let n = rng.random_range(6..14);
        let words: Vec<&str> = (0..n)
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        out.push_str("The ");
        out.push_str(&words.join(" "));
        out.push_str(if s % 5 == 4 { ".\n\n" } else { ". " });
    }
    out
}

#[tokio::test]
async fn a_planted_fact_is_routed_to_its_chunk() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let fact = "Zebulon keeps the vault combination, which is 4 8 15 16 23 42.";
    let text = format!("{}{fact} {}", filler(&mut rng, 40), filler(&mut rng, 40));
    let fact_start = text[..text.find(fact).unwrap()].chars().count();
    let fact_end = fact_start + fact.chars().count();

    let dir = tempfile::tempdir().unwrap();
    let extracted = extract(write(&dir, "town.txt", text.as_bytes())).unwrap();
    let chunks = chunk(&extracted.text, 600, 80);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());

    let store = hearth::store::Store::open_in_memory().await.unwrap();
    let doc = store
        .add_document("town.txt", Some(Path::new("town.txt")), &extracted.text)
        .await
        .unwrap();
    store.replace_chunks(doc.summary.id, &chunks).await.unwrap();
    let found = store
        .search_chunks(
            doc.summary.id,
            "What is the combination of the vault Zebulon keeps?",
            3,
        )
        .await
        .unwrap();
    let best = &found.hits[0];
    assert!(
        best.char_start as usize <= fact_start && fact_end <= best.char_end as usize,
        "best {best:?}, fact at {fact_start}..{fact_end}"
    );
    assert!(chunks[best.ordinal as usize].text.contains(fact));
}
