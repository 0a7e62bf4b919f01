//! The minijinja environment a chat template runs in: Hugging Face's whitespace rules, the
//! Python-compatible helpers HF templates call (`raise_exception`, `strftime_now`, `tojson`,
//! string/dict methods), and the limits that keep an untrusted template from hanging or
//! flooding memory with output.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde::Serialize;

/// Name the template is registered under (shows up in minijinja's error messages).
pub(super) const TEMPLATE_NAME: &str = "chat_template";

/// Instructions one render may execute. Real templates spend a few hundred per message
/// (Llama 3.1: ~40 per message plus ~300 fixed), so this allows conversations of tens of
/// thousands of messages while a runaway nested loop stops in well under a second.
pub(super) const FUEL_PER_RENDER: u64 = 20_000_000;

/// Nesting depth for macros / recursive loops. HF templates do not recurse; a low limit keeps
/// a hostile one far from the native stack limit of small (2 MiB) threads.
const RECURSION_LIMIT: usize = 64;

/// Where "now" comes from for `strftime_now` and `date_string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clock {
    /// The system clock, in the system's local time zone (as Python's `datetime.now()`).
    System,
    /// A fixed instant, in UTC (reproducible renders for tests).
    Fixed(SystemTime),
}

impl Clock {
    fn now(self) -> Result<jiff::Zoned, Error> {
        match self {
            Clock::System => Ok(jiff::Zoned::now()),
            Clock::Fixed(at) => jiff::Timestamp::try_from(at)
                .map(|ts| ts.to_zoned(jiff::tz::TimeZone::UTC))
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fixed time: {e}"))),
        }
    }

    /// `now` formatted with a Python/C `strftime` format string.
    pub(super) fn strftime(self, format: &str) -> Result<String, Error> {
        let now = self.now()?;
        jiff::fmt::strtime::format(format, &now).map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("strftime_now({format:?}): {e}"),
            )
        })
    }
}

thread_local! {
    /// The clock of the render running on this thread, read by `strftime_now`. Set by
    /// [`with_clock`] so the compiled environment can be shared by templates pinned to
    /// different clocks.
    static RENDER_CLOCK: Cell<Clock> = const { Cell::new(Clock::System) };
}

/// Runs `render` with `strftime_now` reading `clock`.
pub(super) fn with_clock<R>(clock: Clock, render: impl FnOnce() -> R) -> R {
    let previous = RENDER_CLOCK.with(|c| c.replace(clock));
    let result = render();
    RENDER_CLOCK.with(|c| c.set(previous));
    result
}

/// Marks an error produced by the template's own `raise_exception(...)` call, so it can be
/// told apart from engine errors (it travels as the minijinja error's `source`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct RaisedException(pub(super) String);

/// Builds the environment with `source` compiled under [`TEMPLATE_NAME`].
pub(super) fn build(source: &str) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    // HF renders with jinja2 `trim_blocks=True, lstrip_blocks=True`, and jinja2's default of
    // dropping one trailing newline (`keep_trailing_newline=False`).
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_fuel(Some(FUEL_PER_RENDER));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: &str| {
        RENDER_CLOCK.with(|c| c.get()).strftime(format)
    });
    env.add_filter("tojson", tojson);
    env.add_template_owned(TEMPLATE_NAME, source.to_owned())?;
    Ok(env)
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message.clone())
        .with_source(RaisedException(message)))
}

/// `tojson` as HF's sandbox defines it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// sort_keys=sort_keys)`, i.e. Python's separators (`", "` and `": "`; `","` between items
/// when indenting) and no HTML escaping. minijinja's built-in `tojson` differs on both
/// (compact separators, `<`/`>`/`&`/`'` escaped), which would change the prompt the model
/// was trained on.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    // Accepted for compatibility with HF's signature; serde_json never escapes non-ASCII.
    let _ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;

    let json_err =
        |e: serde_json::Error| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}"));
    let mut out = Vec::new();
    if sort_keys == Some(true) {
        // serde_json's map (no `preserve_order`) is a BTreeMap: the round trip sorts keys.
        let mut sorted = serde_json::to_value(value).map_err(json_err)?;
        sorted.sort_all_objects();
        write_json(&sorted, indent, &mut out).map_err(json_err)?;
    } else {
        // Straight from the minijinja value: keeps the template's key order, like Python.
        write_json(value, indent, &mut out).map_err(json_err)?;
    }
    String::from_utf8(out)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))
}

fn write_json(
    value: &impl Serialize,
    indent: Option<usize>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    match indent {
        Some(width) => {
            let spaces = " ".repeat(width.min(64));
            let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
            value.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))
        }
        None => value.serialize(&mut serde_json::Serializer::with_formatter(
            out,
            PythonCompact,
        )),
    }
}

/// serde_json formatter with Python `json.dumps`'s default separators.
struct PythonCompact;

impl serde_json::ser::Formatter for PythonCompact {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// Collects rendered output and refuses to grow past `limit` bytes.
pub(super) struct CappedOutput {
    pub(super) buf: Vec<u8>,
    pub(super) limit: usize,
    pub(super) overflowed: bool,
}

impl CappedOutput {
    pub(super) fn new(limit: usize) -> Self {
        CappedOutput {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl io::Write for CappedOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("chat template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Shared, immutable compiled environment (cheap to clone into the `ChatTemplate`).
pub(super) type SharedEnv = Arc<Environment<'static>>;
