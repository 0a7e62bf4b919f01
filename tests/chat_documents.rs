//! Documents in the chat (the chat engine over the store, on lavapipe, with the Qwen2-vocabulary
//! fixture and its ChatML template): a document's prefix is encoded once and shared by every
//! conversation about it, restored from disk by a new engine, token-identical to a cold run;
//! a document larger than the context is cut into windows and a question reads the window
//! holding its answer; a document that cannot fit gets a clear error.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use hearth::chat::{
    ChatEngine, ChatError, TurnDocument, TurnOutcome, import_document, turn_document,
};
use hearth::store::{Message, Role, Settings, Store};

const MODEL: &str = "rand-qwen2-f16.gguf";

fn settings() -> Settings {
    Settings {
        temperature: 0.0,
        repeat_penalty: 1.0,
        max_tokens: 6,
        system_prompt: "You answer questions about documents.".into(),
        ..Settings::default()
    }
}

fn engine(kv: Option<&Path>, context: u32) -> Option<ChatEngine> {
    engine_on(&common::fixture_model(MODEL)?, kv, None, context)
}

fn engine_on(
    model: &Path,
    kv: Option<&Path>,
    budget: Option<u64>,
    context: u32,
) -> Option<ChatEngine> {
    common::chat::engine(model, kv, budget, context)
}

/// A temporary data dir with a store holding `text` imported from `name`.
struct Library {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    store: Store,
    doc: hearth::store::Document,
}

impl Library {
    fn new(name: &str, text: &str) -> Library {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let store = rt
            .block_on(Store::open(dir.path().join("hearth.db")))
            .unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let doc = rt.block_on(import_document(&store, &file)).unwrap();
        Library {
            dir,
            rt,
            store,
            doc,
        }
    }

    fn id(&self) -> i64 {
        self.doc.summary.id
    }

    /// The document as a turn asking `q` sees it.
    fn turn(&self, q: &str) -> TurnDocument {
        self.rt
            .block_on(turn_document(&self.store, self.id(), q))
            .unwrap()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ask(
    e: &mut ChatEngine,
    conv: i64,
    history: &[Message],
    docs: &[TurnDocument],
    q: &str,
) -> TurnOutcome {
    e.send_with_documents(
        conv,
        history,
        q,
        docs,
        &settings(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// Prose of about `sentences` sentences from a small vocabulary, with `facts` placed at the
/// given sentence indices.
fn prose(sentences: usize, facts: &[(usize, String)]) -> String {
    let words = [
        "the", "old", "harbour", "town", "kept", "its", "boats", "in", "a", "long", "row", "while",
        "gulls", "circled", "over", "grey", "water", "and", "nets", "dried", "on", "stone",
        "walls", "near", "market",
    ];
    let mut out = String::new();
    for i in 0..sentences {
        if let Some((_, f)) = facts.iter().find(|(at, _)| *at == i) {
            out.push_str(f);
        } else {
            let n = 8 + i % 5;
            let s: Vec<&str> = (0..n)
                .map(|j| words[(i * 7 + j * 3) % words.len()])
                .collect();
            let mut s = s.join(" ");
            s[..1].make_ascii_uppercase();
            out.push_str(&s);
            out.push('.');
        }
        out.push(if i % 6 == 5 { '\n' } else { ' ' });
        if i % 6 == 5 {
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_document_is_encoded_once_shared_and_restored_from_disk() {
    let lib = Library::new("harbour.txt", &prose(60, &[]));
    let kv = lib.dir.path().join("kv.sqlite");
    let Some(mut first) = engine(Some(&kv), 2048) else {
        return;
    };
    let q = "What did the gulls circle over?";
    let turn_doc = lib.turn(q);

    let a = ask(&mut first, 1, &[], std::slice::from_ref(&turn_doc), q);
    let ra = &a.stats.documents[0];
    assert_eq!((ra.window, ra.windows), (1, 1), "{ra:?}");
    assert!(ra.prefix_tokens > 200, "{ra:?}");
    let whole = ra.prefix_tokens / 16 * 16;
    assert_eq!(ra.encoded_tokens as usize, whole as usize, "{ra:?}");
    assert!(
        a.stats.computed_tokens >= ra.encoded_tokens,
        "the encode is counted as computed: {:?}",
        a.stats
    );

    // A second conversation about it computes none of the document.
    let b = ask(&mut first, 2, &[], std::slice::from_ref(&turn_doc), q);
    let rb = &b.stats.documents[0];
    assert_eq!(rb.encoded_tokens, 0, "{rb:?}");
    assert!(b.stats.reused_tokens >= whole, "{:?}", b.stats);
    assert_eq!(a.tokens, b.tokens);
    first.flush_cache().unwrap();
    drop(first);

    // A new engine on the same data dir: a third conversation restores it from disk.
    let mut second = engine(Some(&kv), 2048).unwrap();
    let c = ask(&mut second, 3, &[], std::slice::from_ref(&turn_doc), q);
    let rc = &c.stats.documents[0];
    assert_eq!(rc.encoded_tokens, 0, "{rc:?}");
    let by = c.stats.reused_by_tier.unwrap();
    assert!(by.disk >= whole, "restored from disk: {:?}", c.stats);

    // Cold: the same answer, ids and all.
    let mut cold = engine(None, 2048).unwrap();
    let d = ask(&mut cold, 1, &[], std::slice::from_ref(&turn_doc), q);
    assert_eq!(c.tokens, d.tokens, "warm from disk == cold");
    assert_eq!(a.tokens, d.tokens, "first == cold");
}

#[test]
fn questions_read_the_window_that_holds_their_answer() {
    let Some(mut e) = engine(None, 512) else {
        return;
    };
    // Seven facts spread through a document of ~8 windows.
    let topics = [
        ("heron", "quarry", "Ossian"),
        ("badger", "orchard", "Pellam"),
        ("otter", "chapel", "Quennel"),
        ("falcon", "brewery", "Rodrick"),
        ("weasel", "lighthouse", "Saffra"),
        ("marten", "tannery", "Tobiah"),
        ("curlew", "granary", "Ulmer"),
    ];
    let n = 420;
    let facts: Vec<(usize, String)> = topics
        .iter()
        .enumerate()
        .map(|(k, (animal, place, name))| {
            (
                30 + k * 55,
                format!("The {animal} of the {place} was called {name}."),
            )
        })
        .collect();
    let text = prose(n, &facts);
    let lib = Library::new("facts.md", &text);
    let mut windows_seen = 0;
    for (k, (animal, place, name)) in topics.iter().enumerate() {
        let q = format!("What was the {animal} of the {place} called?");
        let td = lib.turn(&q);
        let out = ask(&mut e, 100 + k as i64, &[], std::slice::from_ref(&td), &q);
        let r = &out.stats.documents[0];
        windows_seen = r.windows;
        let fact = format!("The {animal} of the {place} was called {name}.");
        let at = text.find(&fact).unwrap();
        let start = text[..at].chars().count() as u64;
        let end = start + fact.chars().count() as u64;
        assert!(
            r.char_start <= start && end <= r.char_end,
            "fact {k} ({start}..{end}) not in the window read: {r:?}"
        );
        assert_eq!(r.document_id, lib.id());
        // The question shares its words with the fact: BM25 found the window (with or without
        // an embedding model agreeing), and the reply says so.
        let by = r.found_by.as_deref();
        let expected: &[&str] = if td.chunk_cosines.is_empty() {
            &["words"]
        } else {
            &["words", "both"]
        };
        assert!(by.is_some_and(|b| expected.contains(&b)), "found_by {by:?}");
    }
    assert!(windows_seen >= 5, "{windows_seen} windows");
}

#[test]
fn encoded_windows_leave_questions_only_their_own_tokens() {
    let Some(mut e) = engine(None, 512) else {
        return;
    };
    let lib = Library::new("long.txt", &prose(200, &[]));
    let td = lib.turn("");
    let report = e.encode_document(&td, &settings()).unwrap();
    assert!(report.windows.len() >= 2, "{report:?}");
    assert!(report.windows.iter().all(|w| w.encoded_tokens > 0));
    // Encoding again computes nothing.
    let again = e.encode_document(&td, &settings()).unwrap();
    assert!(
        again.windows.iter().all(|w| w.encoded_tokens == 0),
        "{again:?}"
    );
    for (i, q) in ["Where were the boats kept?", "What dried on the walls?"]
        .iter()
        .enumerate()
    {
        let td = lib.turn(q);
        let out = ask(&mut e, i as i64 + 1, &[], std::slice::from_ref(&td), q);
        let r = &out.stats.documents[0];
        assert_eq!(r.encoded_tokens, 0, "{r:?}");
        let prefix_whole = r.prefix_tokens / 16 * 16;
        assert_eq!(
            out.stats.computed_tokens,
            out.stats.prompt_tokens - prefix_whole,
            "only the question's own tokens (and the open block) are prefilled: {:?}",
            out.stats
        );
    }
}

#[test]
fn a_follow_up_in_the_same_window_extends_the_history_exactly() {
    let Some(mut e) = engine(None, 2048) else {
        return;
    };
    let lib = Library::new("short.txt", &prose(30, &[]));
    let q1 = "What did the town keep?";
    let td = lib.turn(q1);
    let a = ask(&mut e, 1, &[], std::slice::from_ref(&td), q1);
    let mut history = Vec::new();
    for (role, content, tokens, stats) in [
        (Role::User, q1, Some(a.user_tokens.clone()), None),
        (
            Role::Assistant,
            a.text.as_str(),
            a.reply_tokens.clone(),
            Some(a.stats.clone()),
        ),
    ] {
        history.push(Message {
            id: history.len() as i64 + 1,
            conversation_id: 1,
            role,
            content: content.to_string(),
            created_at: String::new(),
            stats,
            tokens,
        });
    }
    let q2 = "And the gulls?";
    let b = ask(&mut e, 1, &history, std::slice::from_ref(&td), q2);
    assert_eq!(b.stats.recompute_reason, None, "{:?}", b.stats);
    assert!(
        b.stats.reused_tokens + 16 > a.stats.prompt_tokens + a.tokens.len() as u32,
        "turn 2 reuses turn 1's prompt and reply: {:?}",
        b.stats
    );
}

#[test]
fn a_document_that_cannot_fit_any_window_is_a_clear_error() {
    let Some(mut e) = engine(None, 64) else {
        return;
    };
    let td = TurnDocument {
        id: 1,
        name: "big.txt".into(),
        text: prose(100, &[]).into(),
        sha256: "x".into(),
        query: "Hi".into(),
        hits: Vec::new(),
        chunk_cosines: Vec::new(),
    };
    let err = e
        .send_with_documents(
            1,
            &[],
            "Hi",
            std::slice::from_ref(&td),
            &settings(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(matches!(err, ChatError::DocumentTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("context"), "{err}");
}

#[test]
fn asking_every_window_reads_each_once_and_combines() {
    let Some(mut e) = engine(None, 512) else {
        return;
    };
    let td = TurnDocument {
        id: 7,
        name: "harbour.txt".into(),
        text: prose(120, &[]).into(),
        sha256: "every-window".into(),
        query: String::new(),
        hits: Vec::new(),
        chunk_cosines: Vec::new(),
    };
    let mut streamed = String::new();
    let every = e
        .ask_every_window(
            &td,
            "What happens in the harbour?",
            &settings(),
            &mut |ev| {
                if let hearth::chat::TurnEvent::Token { text } = ev {
                    streamed.push_str(&text);
                }
            },
            &AtomicBool::new(false),
        )
        .unwrap();
    let n = every.parts.len();
    assert!(n >= 2, "{n} windows");
    for (k, p) in every.parts.iter().enumerate() {
        let r = &p.stats.documents[0];
        assert_eq!((r.window as usize, r.windows as usize), (k + 1, n), "{r:?}");
    }
    assert!(every.combined.stats.documents.is_empty());
    assert!(every.combined.stats.prompt_tokens > 0);
    assert!(
        streamed.contains(&format!("[window {n} of {n}]")),
        "{streamed}"
    );
    assert_eq!(
        e.resident_conversations(),
        0,
        "the one-off turns are forgotten"
    );
}

/// A document deleted between gathering it and the reply (as when it is deleted while a reply
/// streams): the reply completes from the text the turn holds, and forgetting it afterwards
/// leaves the engine answering other questions.
#[test]
fn a_document_deleted_during_a_turn_ends_cleanly() {
    let Some(mut e) = engine(None, 2048) else {
        return;
    };
    let lib = Library::new("gone.txt", &prose(20, &[]));
    let (rt, store, doc) = (&lib.rt, &lib.store, &lib.doc);
    let conv = rt.block_on(store.create_conversation(None)).unwrap().id;
    rt.block_on(store.attach(conv, doc.summary.id)).unwrap();
    let q = "Where were the boats?";
    let docs = rt
        .block_on(hearth::chat::turn_documents(store, conv, q))
        .unwrap();
    rt.block_on(store.delete_document(doc.summary.id)).unwrap();
    let out = ask(&mut e, conv, &[], &docs, q);
    assert_eq!(out.stats.documents[0].document_id, doc.summary.id);
    e.forget_document(doc.summary.id);
    let docs = rt
        .block_on(hearth::chat::turn_documents(store, conv, q))
        .unwrap();
    assert!(docs.is_empty(), "detached by the delete");
    let again = ask(&mut e, conv, &[], &docs, q);
    assert!(again.stats.documents.is_empty());
    assert!(again.stats.generated_tokens > 0);
}

/// A detached document's prefix, pushed off the GPU (a one-context pool) by another document,
/// comes back from the RAM tier — and the answer is the cold one.
#[test]
fn a_detached_document_comes_back_from_ram_as_cold() {
    let Some(model) = common::fixture_model(MODEL) else {
        return;
    };
    let Some(mut e) = engine_on(&model, None, Some(1), 1024) else {
        return;
    };
    let doc = |id: i64, n: usize| TurnDocument {
        id,
        name: format!("doc{id}.txt"),
        text: prose(n, &[(3, format!("Document {id} is about harbours."))]).into(),
        sha256: format!("ram-{id}"),
        query: String::new(),
        hits: Vec::new(),
        chunk_cosines: Vec::new(),
    };
    let (a, b) = (doc(1, 25), doc(2, 25));
    let q = "What is the document about?";
    let first = ask(&mut e, 1, &[], std::slice::from_ref(&a), q);
    assert!(first.stats.documents[0].encoded_tokens > 0);
    e.unpin_document(1);
    e.forget_conversation(1);
    // Another document's conversations fill the one-context pool.
    for c in 2..5 {
        ask(&mut e, c, &[], std::slice::from_ref(&b), q);
    }
    let again = ask(&mut e, 9, &[], std::slice::from_ref(&a), q);
    let by = again.stats.reused_by_tier.unwrap();
    assert_eq!(
        again.stats.documents[0].encoded_tokens, 0,
        "{:?}",
        again.stats
    );
    assert!(by.ram > 0, "restored from RAM: {:?}", again.stats);
    let mut cold = engine(None, 1024).unwrap();
    let want = ask(&mut cold, 1, &[], std::slice::from_ref(&a), q);
    assert_eq!(again.tokens, want.tokens, "warm from RAM == cold");
    assert_eq!(first.tokens, want.tokens);
}

/// SmolLM2-135M-Instruct (a real model, its real ChatML template): a document's answer is the
/// same cold, shared on the GPU, and restored from disk by a new engine.
#[test]
fn smollm2_answers_about_a_document_the_same_cold_shared_and_from_disk() {
    let Some(model) = common::real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.sqlite");
    let Some(mut first) = engine_on(&model, Some(&kv), None, 1024) else {
        return;
    };
    let td = TurnDocument {
        id: 1,
        name: "lighthouse.txt".into(),
        text: "The lighthouse on Gull Rock was kept by Mara Quill for forty years. \
               Every evening she climbed the 112 steps to light the lamp, and her daughter \
               carried a pot of tea up to her. In 1931 a storm broke the great lens, and the \
               village fishermen rowed out with lanterns until it was mended."
            .into(),
        sha256: "smollm2-doc".into(),
        query: String::new(),
        hits: Vec::new(),
        chunk_cosines: Vec::new(),
    };
    let q = "Who kept the lighthouse?";
    let a = ask(&mut first, 1, &[], std::slice::from_ref(&td), q);
    let b = ask(&mut first, 2, &[], std::slice::from_ref(&td), q);
    assert_eq!(b.stats.documents[0].encoded_tokens, 0, "{:?}", b.stats);
    first.flush_cache().unwrap();
    drop(first);
    let mut second = engine_on(&model, Some(&kv), None, 1024).unwrap();
    let c = ask(&mut second, 3, &[], std::slice::from_ref(&td), q);
    let by = c.stats.reused_by_tier.unwrap();
    assert!(by.disk >= 64, "restored from disk: {:?}", c.stats);
    drop(second);
    let mut cold = engine_on(&model, None, None, 1024).unwrap();
    let d = ask(&mut cold, 1, &[], std::slice::from_ref(&td), q);
    eprintln!("SmolLM2 on the document: {:?}", d.text);
    assert_eq!(a.tokens, d.tokens, "first == cold");
    assert_eq!(b.tokens, d.tokens, "shared on the GPU == cold");
    assert_eq!(c.tokens, d.tokens, "restored from disk == cold");
}
