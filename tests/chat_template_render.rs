//! Chat templates rendered against the prompt formats documented on the model cards (Llama 3.1,
//! Qwen2.5, Mistral 7B Instruct / Nemo, Llama 2 chat), written out by hand. Exact string
//! equality. Templates from llama.cpp's `models/templates/` (vendored in llama-cpp-python
//! 0.3.36); the Llama 2 and Mistral v0.1/v0.2 templates are not there and are embedded (their
//! `tokenizer_config.json` strings).

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hearth::tokenizer::chat_template::FallbackTemplate;
use hearth::tokenizer::{ChatMessage, ChatTemplate, ChatTemplateError};

/// 2024-07-26 12:00 UTC: "26 Jul 2024", the date Llama 3.1's card shows.
fn jul_26_2024() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_721_995_200)
}

fn vendor_template(name: &str) -> Option<String> {
    let dir: PathBuf = common::llama_vendor_models()?.join("templates");
    let path = dir.join(name);
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn llama31() -> Option<ChatTemplate> {
    let source = vendor_template("meta-llama-Llama-3.1-8B-Instruct.jinja")?;
    Some(
        ChatTemplate::new(&source, "<|begin_of_text|>", "<|eot_id|>")
            .unwrap()
            .with_fixed_now(jul_26_2024()),
    )
}

fn qwen25() -> Option<ChatTemplate> {
    let source = vendor_template("Qwen-Qwen2.5-7B-Instruct.jinja")?;
    Some(ChatTemplate::new(&source, "", "<|im_end|>").unwrap())
}

/// Mistral Nemo (v3-tekken), the folder's closest relative of Mistral 7B Instruct.
fn mistral_nemo() -> Option<ChatTemplate> {
    let source = vendor_template("mistralai-Mistral-Nemo-Instruct-2407.jinja")?;
    Some(ChatTemplate::new(&source, "<s>", "</s>").unwrap())
}

/// Mistral-7B-Instruct-v0.1 / v0.2 (pre-v1) `chat_template`: no system role.
const MISTRAL_7B_V02: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

/// Llama-2-7b-chat-hf `chat_template`.
const LLAMA2_CHAT: &str = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

fn mistral_7b() -> ChatTemplate {
    ChatTemplate::new(MISTRAL_7B_V02, "<s>", "</s>").unwrap()
}

fn llama2() -> ChatTemplate {
    ChatTemplate::new(LLAMA2_CHAT, "<s>", "</s>").unwrap()
}

fn sys_user() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are helpful."),
        ChatMessage::user("Hi"),
    ]
}

/// system, user, assistant, user.
fn multi_turn() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are helpful."),
        ChatMessage::user("Hi"),
        ChatMessage::assistant("Hello! How can I help?"),
        ChatMessage::user("Tell me a joke."),
    ]
}

// ---- Llama 3.1 -------------------------------------------------------------------------------

const L31_SYSTEM: &str = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are helpful.<|eot_id|>";

#[test]
fn llama31_system_user() {
    let Some(t) = llama31() else { return };
    assert_eq!(
        t.render(&sys_user(), true).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn llama31_multi_turn_with_and_without_generation_prompt() {
    let Some(t) = llama31() else { return };
    let body = format!(
        "{L31_SYSTEM}<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
    );
    assert_eq!(t.render(&multi_turn(), false).unwrap(), body);
    assert_eq!(
        t.render(&multi_turn(), true).unwrap(),
        format!("{body}<|start_header_id|>assistant<|end_header_id|>\n\n")
    );
}

#[test]
fn llama31_without_system_still_has_the_date_header() {
    let Some(t) = llama31() else { return };
    assert_eq!(
        t.render(&[ChatMessage::user("Hi")], true).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn llama31_date_string_follows_the_clock() {
    let Some(t) = llama31() else { return };
    let t = t.with_fixed_now(SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_819_200));
    assert!(
        t.render(&sys_user(), true)
            .unwrap()
            .contains("\nToday Date: 02 Jan 2025\n\n")
    );
}

// ---- Qwen2.5 ---------------------------------------------------------------------------------

#[test]
fn qwen25_default_system_prompt() {
    let Some(t) = qwen25() else { return };
    assert_eq!(
        t.render(&[ChatMessage::user("Hi")], true).unwrap(),
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn qwen25_multi_turn_with_and_without_generation_prompt() {
    let Some(t) = qwen25() else { return };
    let body = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nTell me a joke.<|im_end|>\n";
    assert_eq!(t.render(&multi_turn(), false).unwrap(), body);
    assert_eq!(
        t.render(&multi_turn(), true).unwrap(),
        format!("{body}<|im_start|>assistant\n")
    );
}

// ---- Mistral ---------------------------------------------------------------------------------

#[test]
fn mistral_7b_instruct_format() {
    let t = mistral_7b();
    assert_eq!(
        t.render(&[ChatMessage::user("Hi")], true).unwrap(),
        "<s>[INST] Hi [/INST]"
    );
    let turns = &multi_turn()[1..];
    let expected = "<s>[INST] Hi [/INST]Hello! How can I help?</s>[INST] Tell me a joke. [/INST]";
    assert_eq!(t.render(turns, true).unwrap(), expected);
    // The template has no generation prompt: the [/INST] already opens the answer.
    assert_eq!(t.render(turns, false).unwrap(), expected);
}

#[test]
fn mistral_7b_has_no_system_role_and_the_fallback_folds_it() {
    let t = mistral_7b();
    assert!(!t.supports_system_role());
    match t.render(&sys_user(), true) {
        Err(ChatTemplateError::Raised { message, .. }) => {
            assert_eq!(
                message,
                "Conversation roles must alternate user/assistant/user/assistant/..."
            )
        }
        other => panic!("expected the template to raise, got {other:?}"),
    }
    assert_eq!(
        t.render_with_system_fallback(&multi_turn(), true).unwrap(),
        "<s>[INST] You are helpful.\nHi [/INST]Hello! How can I help?</s>[INST] Tell me a joke. [/INST]"
    );
}

#[test]
fn mistral_nemo_format() {
    let Some(t) = mistral_nemo() else { return };
    assert_eq!(
        t.render(&[ChatMessage::user("Hi")], true).unwrap(),
        "<s>[INST]Hi[/INST]"
    );
    assert_eq!(
        t.render(&multi_turn()[1..], true).unwrap(),
        "<s>[INST]Hi[/INST]Hello! How can I help?</s>[INST]Tell me a joke.[/INST]"
    );
    // Nemo puts the system prompt into the *last* user turn.
    assert!(t.supports_system_role());
    assert_eq!(
        t.render(&multi_turn(), true).unwrap(),
        "<s>[INST]Hi[/INST]Hello! How can I help?</s>[INST]You are helpful.\n\nTell me a joke.[/INST]"
    );
}

#[test]
fn mistral_nemo_rejects_roles_out_of_order() {
    let Some(t) = mistral_nemo() else { return };
    let err = t
        .render(&[ChatMessage::user("a"), ChatMessage::user("b")], true)
        .unwrap_err();
    let ChatTemplateError::Raised { message, line } = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with("After the optional system message, conversation roles must alternate")
    );
    assert!(
        line.is_some(),
        "raise_exception errors carry the template line"
    );
}

// ---- Llama 2 ---------------------------------------------------------------------------------

#[test]
fn llama2_chat_format() {
    let t = llama2();
    assert_eq!(
        t.render(&multi_turn(), true).unwrap(),
        "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! How can I help? </s><s>[INST] Tell me a joke. [/INST]"
    );
    assert_eq!(
        t.render(&[ChatMessage::user("Hi")], false).unwrap(),
        "<s>[INST] Hi [/INST]"
    );
}

// ---- append-only: the KV cache's premise --------------------------------------------------------

/// For each prefix of `conversation` that ends in a user turn, the prompt rendered with the
/// generation prompt must be a prefix of the next turn's prompt (after the assistant reply and
/// the next user message are appended), and of the history rendered without one.
fn append_only_violations(t: &ChatTemplate, conversation: &[ChatMessage]) -> Vec<String> {
    let mut violations = Vec::new();
    for k in 0..conversation.len() {
        if conversation[k].role != "user" {
            continue;
        }
        let prompt = t.render(&conversation[..=k], true).unwrap();
        for (end, add_gen) in [(k + 2, false), (k + 3, true)] {
            if end > conversation.len() {
                continue;
            }
            let next = t.render(&conversation[..end], add_gen).unwrap();
            if !next.starts_with(&prompt) {
                violations.push(format!(
                    "messages[..{}] (gen) vs messages[..{end}] (gen={add_gen})",
                    k + 1
                ));
            }
        }
    }
    violations
}

fn long_conversation(with_system: bool) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    if with_system {
        messages.push(ChatMessage::system("You are helpful."));
    }
    for i in 0..3 {
        messages.push(ChatMessage::user(format!("Question {i}?")));
        messages.push(ChatMessage::assistant(format!("Answer {i}.")));
    }
    messages.push(ChatMessage::user("Last question?"));
    messages
}

#[test]
fn prompts_are_append_only() {
    let mut templates = vec![
        ("Mistral 7B v0.2", mistral_7b(), false),
        ("Llama 2 chat", llama2(), true),
        (
            "fallback ChatML",
            ChatTemplate::fallback(FallbackTemplate::ChatMl, "", "").unwrap(),
            true,
        ),
        (
            "fallback Llama 3",
            ChatTemplate::fallback(FallbackTemplate::Llama3, "<|begin_of_text|>", "<|eot_id|>")
                .unwrap(),
            true,
        ),
    ];
    templates.extend(llama31().map(|t| ("Llama 3.1", t, true)));
    templates.extend(qwen25().map(|t| ("Qwen2.5", t, true)));
    templates.extend(mistral_nemo().map(|t| ("Mistral Nemo (no system)", t, false)));
    for (name, t, system_too) in &templates {
        let v = append_only_violations(t, &long_conversation(false));
        assert!(v.is_empty(), "{name}: {v:?}");
        if *system_too {
            let v = append_only_violations(t, &long_conversation(true));
            assert!(v.is_empty(), "{name} with a system message: {v:?}");
        }
    }
}

/// Known break: Mistral Nemo (and Mistral Large v3) render the system prompt inside the *last*
/// user turn, so every new turn rewrites history and the cached prefix ends at `[INST]`.
#[test]
fn mistral_nemo_with_a_system_message_is_not_append_only() {
    let Some(t) = mistral_nemo() else { return };
    assert!(!append_only_violations(&t, &long_conversation(true)).is_empty());
}

/// Llama 3.1 trims message text: an assistant reply generated as "  Hi  " is re-rendered as
/// "Hi", so the tokens a model generated are not always the tokens of the next prompt.
#[test]
fn llama31_trims_assistant_replies() {
    let Some(t) = llama31() else { return };
    let text = t
        .render(
            &[ChatMessage::user("Hi"), ChatMessage::assistant("  Hello  ")],
            false,
        )
        .unwrap();
    assert!(text.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"));
}

// ---- fallback ----------------------------------------------------------------------------------

#[test]
fn chatml_fallback_is_llama_cpps() {
    let t = ChatTemplate::fallback(FallbackTemplate::ChatMl, "<s>", "</s>").unwrap();
    assert!(t.is_fallback());
    assert_eq!(t.fallback_kind(), Some(FallbackTemplate::ChatMl));
    assert_eq!(
        t.render(&sys_user(), true).unwrap(),
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        t.render(&sys_user(), false).unwrap(),
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    );
    assert!(!mistral_7b().is_fallback());
}

#[test]
fn llama2_fallback_matches_the_llama2_card() {
    let t = ChatTemplate::fallback(FallbackTemplate::Llama2, "<s>", "</s>").unwrap();
    assert_eq!(
        t.render(&multi_turn(), true).unwrap(),
        llama2().render(&multi_turn(), true).unwrap()
    );
    assert_eq!(
        t.render(&[ChatMessage::user("Hi")], true).unwrap(),
        "<s>[INST] Hi [/INST]"
    );
}

#[test]
fn llama3_fallback_matches_the_llama3_card() {
    let t = ChatTemplate::fallback(FallbackTemplate::Llama3, "<|begin_of_text|>", "<|eot_id|>")
        .unwrap();
    assert_eq!(
        t.render(&sys_user(), true).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn fallback_choice() {
    let chatml_vocab = ["<unk>", "<|im_start|>", "<|im_end|>", "hello"];
    let llama3_vocab = [
        "<|begin_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
    ];
    let llama2_vocab = ["<unk>", "<s>", "</s>", "▁the"];
    assert_eq!(
        FallbackTemplate::choose(Some("qwen2"), chatml_vocab),
        FallbackTemplate::ChatMl
    );
    assert_eq!(
        FallbackTemplate::choose(Some("llama"), chatml_vocab),
        FallbackTemplate::ChatMl
    );
    assert_eq!(
        FallbackTemplate::choose(Some("llama"), llama3_vocab),
        FallbackTemplate::Llama3
    );
    assert_eq!(
        FallbackTemplate::choose(Some("llama"), llama2_vocab),
        FallbackTemplate::Llama2
    );
    assert_eq!(
        FallbackTemplate::choose(Some("qwen2"), llama2_vocab),
        FallbackTemplate::ChatMl
    );
    assert_eq!(FallbackTemplate::choose(None, []), FallbackTemplate::ChatMl);
}
