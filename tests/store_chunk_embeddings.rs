//! Chunk embeddings in the store (migration 0005): saved and read back exactly, keyed by the
//! embedding model, recomputed when the chunk text changes, and damaged rows reported as
//! warnings with their chunks handed back to recompute — never an error or a panic.

use hearth::store::{ChunkSpec, Store, StoreError, chunk_text_hash, vector_bytes};

const TEXT: &str = "First chunk of text. Second chunk here. Third one at the end.";

async fn setup() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("hearth.db")).await.unwrap();
    let doc = store.add_document("d.txt", None, TEXT).await.unwrap();
    let id = doc.summary.id;
    let spec = |s: usize, e: usize| ChunkSpec {
        char_start: s,
        char_end: e,
        text: TEXT[s..e].to_string(),
    };
    store
        .replace_chunks(id, &[spec(0, 20), spec(21, 39), spec(40, TEXT.len())])
        .await
        .unwrap();
    (dir, store, id)
}

fn vecs(seed: f32, pieces: usize) -> Vec<Vec<f32>> {
    (0..pieces)
        .map(|p| {
            (0..4)
                .map(|i| seed + p as f32 * 10.0 + i as f32 * 0.25)
                .collect()
        })
        .collect()
}

async fn save_all(store: &Store, id: i64, model: &str) {
    let chunks = store.document_chunks(id).await.unwrap();
    let v: Vec<Vec<Vec<f32>>> = (0..chunks.len()).map(|i| vecs(i as f32, i + 1)).collect();
    let rows: Vec<(i64, &str, &[Vec<f32>])> = chunks
        .iter()
        .zip(&v)
        .map(|(c, v)| (c.chunk_id, c.text.as_str(), v.as_slice()))
        .collect();
    store.put_chunk_vectors(model, &rows).await.unwrap();
}

#[tokio::test]
async fn vectors_round_trip_per_model() {
    let (_dir, store, id) = setup().await;
    let before = store.chunk_vectors(id, "m1", 4).await.unwrap();
    assert!(before.vectors.is_empty());
    assert_eq!(before.missing.len(), 3);
    save_all(&store, id, "m1").await;
    let got = store.chunk_vectors(id, "m1", 4).await.unwrap();
    assert!(got.missing.is_empty() && got.warnings.is_empty(), "{got:?}");
    for (i, c) in got.vectors.iter().enumerate() {
        assert_eq!(c.vectors, vecs(i as f32, i + 1), "chunk {i} bit-exact");
    }
    assert_eq!(
        (got.vectors[1].char_start, got.vectors[1].char_end),
        (21, 39)
    );
    // Another model has none; replacing the chunks drops the vectors with them.
    assert_eq!(
        store
            .chunk_vectors(id, "m2", 4)
            .await
            .unwrap()
            .missing
            .len(),
        3
    );
    store
        .replace_chunks(
            id,
            &[ChunkSpec {
                char_start: 0,
                char_end: TEXT.len(),
                text: TEXT.into(),
            }],
        )
        .await
        .unwrap();
    let after = store.chunk_vectors(id, "m1", 4).await.unwrap();
    assert_eq!((after.vectors.len(), after.missing.len()), (0, 1));
}

#[tokio::test]
async fn bad_vectors_are_refused_on_write() {
    let (_dir, store, id) = setup().await;
    let c = store.document_chunks(id).await.unwrap()[0].clone();
    for bad in [
        vec![],
        vec![vec![1.0, f32::NAN]],
        vec![vec![1.0, 2.0], vec![1.0]],
    ] {
        let err = store
            .put_chunk_vectors("m", &[(c.chunk_id, c.text.as_str(), bad.as_slice())])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidEmbedding { .. }), "{err}");
    }
}

#[tokio::test]
async fn damaged_rows_are_warnings_and_recomputed() {
    let (_dir, store, id) = setup().await;
    save_all(&store, id, "m").await;
    let chunks = store.document_chunks(id).await.unwrap();
    // Damage each row a different way, behind the store's back.
    let pool = store.pool();
    let ids: Vec<i64> = chunks.iter().map(|c| c.chunk_id).collect();
    sqlx::query("UPDATE chunk_embeddings SET vector = x'0102' WHERE chunk_id = ?1")
        .bind(ids[0])
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE chunk_embeddings SET dim = 3 WHERE chunk_id = ?1")
        .bind(ids[1])
        .execute(pool)
        .await
        .unwrap();
    let nan = vector_bytes(&[vec![f32::NAN, 0.0, 0.0, 0.0]]);
    sqlx::query("UPDATE chunk_embeddings SET vector = ?2 WHERE chunk_id = ?1")
        .bind(ids[2])
        .bind(nan)
        .execute(pool)
        .await
        .unwrap();
    let got = store.chunk_vectors(id, "m", 4).await.unwrap();
    assert!(got.vectors.is_empty());
    assert_eq!(got.missing.len(), 3);
    assert_eq!(got.warnings.len(), 3, "{:?}", got.warnings);
    // A row computed from another text is stale.
    save_all(&store, id, "m").await;
    sqlx::query("UPDATE chunk_embeddings SET text_blake3 = ?2 WHERE chunk_id = ?1")
        .bind(ids[1])
        .bind(chunk_text_hash("something else"))
        .execute(pool)
        .await
        .unwrap();
    let got = store.chunk_vectors(id, "m", 4).await.unwrap();
    assert_eq!((got.vectors.len(), got.missing.len()), (2, 1));
    assert!(
        got.warnings[0].problem.contains("another text"),
        "{:?}",
        got.warnings
    );
    // Reading with another dimension (a changed model under the same name) is a warning too.
    let wrong = store.chunk_vectors(id, "m", 8).await.unwrap();
    assert_eq!(wrong.missing.len(), 3);
}
