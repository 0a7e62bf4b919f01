//! The template engine's HF compatibility (whitespace rules, Python methods, `tojson`,
//! `strftime_now`, the context) and its behaviour on bad or hostile templates.

use std::time::{Duration, Instant, SystemTime};

use hearth::tokenizer::chat_template::{MAX_TEMPLATE_BYTES, OUTPUT_BASE_BYTES};
use hearth::tokenizer::{ChatMessage, ChatTemplate, ChatTemplateError};

fn render(source: &str, messages: &[ChatMessage]) -> Result<String, ChatTemplateError> {
    ChatTemplate::new(source, "<s>", "</s>")?
        .with_fixed_now(SystemTime::UNIX_EPOCH + Duration::from_secs(1_721_995_200))
        .render(messages, true)
}

fn hi() -> Vec<ChatMessage> {
    vec![ChatMessage::user("Hi")]
}

// ---- HF compatibility ---------------------------------------------------------------------------

/// jinja2 with `trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False` renders this
/// as "A\nB" (checked against the jinja2 documentation's whitespace-control rules).
#[test]
fn whitespace_rules_are_hfs() {
    let out = render("  {% if true %}\nA\n  {% endif %}\nB\n", &hi()).unwrap();
    assert_eq!(out, "A\nB");
    // Variable tags are not blocks: the newline after them stays.
    assert_eq!(render("{{ 'x' }}\ny", &hi()).unwrap(), "x\ny");
}

#[test]
fn python_string_and_dict_methods() {
    let source = "{{ messages[0].content.strip().split(',') | join('|') }}\
        {% if messages[0].content.startswith(' a') %}!{% endif %}\
        {% for k, v in {'x': 1, 'y': 2}.items() %} {{ k }}={{ v }}{% endfor %}\
        {{ ' ' + messages[0].role.upper() }}";
    let out = render(source, &[ChatMessage::user(" a,b,c ")]).unwrap();
    assert_eq!(out, "a|b|c! x=1 y=2 USER");
}

/// Python's `json.dumps(..., ensure_ascii=False)`: ", " and ": " separators, "," when
/// indenting, key order kept, no HTML escaping, non-ASCII as is.
#[test]
fn tojson_is_pythons() {
    let value = "{'b': 1, 'a': [1.5, 'x<y&z', 'é'], 'c': none}";
    assert_eq!(
        render(&format!("{{{{ {value} | tojson }}}}"), &hi()).unwrap(),
        r#"{"b": 1, "a": [1.5, "x<y&z", "é"], "c": null}"#
    );
    assert_eq!(
        render(&format!("{{{{ {value} | tojson(indent=2) }}}}"), &hi()).unwrap(),
        "{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    \"x<y&z\",\n    \"é\"\n  ],\n  \"c\": null\n}"
    );
    assert_eq!(
        render(
            &format!("{{{{ {value} | tojson(sort_keys=true) }}}}"),
            &hi()
        )
        .unwrap(),
        r#"{"a": [1.5, "x<y&z", "é"], "b": 1, "c": null}"#
    );
}

#[test]
fn strftime_now_uses_the_pinned_clock() {
    assert_eq!(
        render("{{ strftime_now('%Y-%m-%d %B %d %b %Y') }}", &hi()).unwrap(),
        "2024-07-26 July 26 Jul 2024"
    );
}

#[test]
fn system_clock_gives_a_plausible_date() {
    let t = ChatTemplate::new("{{ date_string }}|{{ strftime_now('%Y') }}", "", "").unwrap();
    let out = t.render(&hi(), false).unwrap();
    let (date, year) = out.split_once('|').unwrap();
    assert!(year.parse::<u32>().unwrap() >= 2025, "{out}");
    assert!(
        date.ends_with(year) && date.len() == "26 Jul 2024".len(),
        "{out}"
    );
}

#[test]
fn context_variables() {
    let source = "{{ bos_token }}{{ eos_token }}\
        {% if tools is none %} tools=none{% endif %}\
        {% if enable_thinking is not defined %} no-thinking{% endif %}\
        {% if add_generation_prompt %} gen{% endif %} {{ date_string }} {{ messages | length }}";
    assert_eq!(
        render(source, &hi()).unwrap(),
        "<s></s> tools=none no-thinking gen 26 Jul 2024 1"
    );
}

// ---- bad and hostile templates ------------------------------------------------------------------

#[test]
fn syntax_error_names_the_line() {
    let err = ChatTemplate::new("Hello\n{{ bos_token }}\n{% if %}\n", "", "").unwrap_err();
    let ChatTemplateError::Syntax { line, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, Some(3));
    assert!(err.to_string().contains("line 3"), "{err}");

    let err = ChatTemplate::new("{% for m in messages %}{{ m.content }}", "", "").unwrap_err();
    assert!(matches!(err, ChatTemplateError::Syntax { .. }), "{err:?}");
}

#[test]
fn raise_exception_is_a_typed_error() {
    let err = render(
        "x\n{{ raise_exception('bad role: ' + messages[0].role) }}",
        &hi(),
    )
    .unwrap_err();
    let ChatTemplateError::Raised { message, line } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(message, "bad role: user");
    assert_eq!(*line, Some(2));
    assert!(err.to_string().contains("bad role: user"));

    // Raised from inside a macro: still recognised.
    let err = render(
        "{% macro f() %}{{ raise_exception('deep') }}{% endmacro %}{{ f() }}",
        &hi(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ChatTemplateError::Raised { message, .. } if message == "deep"),
        "{err:?}"
    );
}

#[test]
fn unknown_method_or_filter_is_a_render_error() {
    let err = render("{{ messages[0].content.no_such_method() }}", &hi()).unwrap_err();
    assert!(matches!(err, ChatTemplateError::Render { .. }), "{err:?}");
    let err = ChatTemplate::new("{{ x | no_such_filter }}", "", "")
        .and_then(|t| t.render(&hi(), true))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ChatTemplateError::Syntax { .. } | ChatTemplateError::Render { .. }
        ),
        "{err:?}"
    );
}

/// 10^10 loop iterations: stopped by the fuel budget, quickly (bound: 20 s even on a loaded
/// 2-core test machine; it takes well under a second unloaded).
#[test]
fn runaway_loop_runs_out_of_fuel() {
    let start = Instant::now();
    let err = render(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        &hi(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::OutOfFuel { .. }),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn unbounded_recursion_is_an_error_not_a_stack_overflow() {
    let err = render(
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        &hi(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ChatTemplateError::Render { .. } | ChatTemplateError::OutOfFuel { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn huge_output_is_capped() {
    // 10^7 writes of 64 bytes would be 640 MB.
    let err = render(
        "{% for a in range(100000) %}{% for b in range(100) %}0123456789012345678901234567890123456789012345678901234567890123{% endfor %}{% endfor %}",
        &hi(),
    )
    .unwrap_err();
    let ChatTemplateError::OutputTooLarge { limit } = err else {
        panic!("{err:?}")
    };
    assert!((OUTPUT_BASE_BYTES..OUTPUT_BASE_BYTES + 1000).contains(&limit));

    // One 50 MB write (string repetition is itself capped at 100 MB by minijinja).
    let err = render("{{ 'x' * 50000000 }}", &hi()).unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::OutputTooLarge { .. }),
        "{err:?}"
    );
}

/// The cap grows with the input: a long conversation renders in full.
#[test]
fn long_inputs_are_not_capped() {
    let long = "word ".repeat(OUTPUT_BASE_BYTES / 4);
    let messages = vec![
        ChatMessage::user(long.clone()),
        ChatMessage::assistant(long.clone()),
        ChatMessage::user(long),
    ];
    let out = render(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
        &messages,
    )
    .unwrap();
    assert!(out.len() > 3 * OUTPUT_BASE_BYTES);
}

#[test]
fn oversized_template_is_refused() {
    let source = "x".repeat(MAX_TEMPLATE_BYTES + 1);
    let err = ChatTemplate::new(&source, "", "").unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::TemplateTooLarge { .. }),
        "{err:?}"
    );
}
