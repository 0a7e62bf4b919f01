//! The WGSL sources (`shaders/*.wgsl`, embedded with `include_str!`) and the small line
//! preprocessor that makes their variants.
//!
//! Directives, each alone on a line (they are WGSL comments, so editors still highlight):
//! - `//#include NAME` inserts the include file NAME (bytes, dequant, reduce, dot32, paged_kv,
//!   row_sum, row_dot, rope_math, xgroup), once per shader; includes may use `#if` too.
//! - `//#if NAME` / `//#else` / `//#endif` keep or drop lines by whether NAME is defined;
//!   they nest.
//! - `//#slot NAME N` inserts include NAME again for weight slot N (0–2) of a fused kernel:
//!   expanded afresh (its own includes too) with the defines `SN_X` seen as `X` (e.g.
//!   `S1_TYPE_Q8_0` makes slot 1 a Q8_0 weight), then every function it declares gets the
//!   suffix `_N` and the identifier `W` becomes `WN`, so slots of different block types live
//!   in one shader (`matvec_fused.wgsl`).
//!
//! Defines in use: `TYPE_F32`, `TYPE_F16`, `TYPE_Q8_0`, `TYPE_Q4_0`, `TYPE_Q4_1`, `TYPE_Q5_0`, `TYPE_Q4_K`,
//! `TYPE_Q5_K`, `TYPE_Q6_K`
//! (dequant.wgsl), `SUBGROUP` (reduce.wgsl), `KV_F16` (kv_write, attention, attention_tiled), `PARTIAL` /
//! `COMBINE` (the two entry points of attention.wgsl, whose bindings differ), `ADD` (matvec:
//! accumulate into Y), `QKV` / `GLU` / `NORM` / `BIAS` (matvec_fused.wgsl). Numeric knobs are
//! WGSL `override` constants.

use super::GpuError;

/// A kernel family: one `shaders/*.wgsl` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShaderId {
    MatVec,
    MatMul,
    RmsNorm,
    Rope,
    Elementwise,
    Embed,
    Argmax,
    KvWrite,
    Attention,
    AttentionTiled,
    AttentionRows,
    AttentionLanes,
    MatVecFused,
    RopeKv,
}

impl ShaderId {
    pub fn name(self) -> &'static str {
        match self {
            ShaderId::MatVec => "matvec",
            ShaderId::MatMul => "matmul",
            ShaderId::RmsNorm => "rmsnorm",
            ShaderId::Rope => "rope",
            ShaderId::Elementwise => "elementwise",
            ShaderId::Embed => "embed",
            ShaderId::Argmax => "argmax",
            ShaderId::KvWrite => "kv_write",
            ShaderId::Attention => "attention",
            ShaderId::AttentionTiled => "attention_tiled",
            ShaderId::AttentionRows => "attention_rows",
            ShaderId::AttentionLanes => "attention_lanes",
            ShaderId::MatVecFused => "matvec_fused",
            ShaderId::RopeKv => "rope_kv",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            ShaderId::MatVec => include_str!("../../shaders/matvec.wgsl"),
            ShaderId::MatMul => include_str!("../../shaders/matmul.wgsl"),
            ShaderId::RmsNorm => include_str!("../../shaders/rmsnorm.wgsl"),
            ShaderId::Rope => include_str!("../../shaders/rope.wgsl"),
            ShaderId::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            ShaderId::Embed => include_str!("../../shaders/embed.wgsl"),
            ShaderId::Argmax => include_str!("../../shaders/argmax.wgsl"),
            ShaderId::KvWrite => include_str!("../../shaders/kv_write.wgsl"),
            ShaderId::Attention => include_str!("../../shaders/attention.wgsl"),
            ShaderId::AttentionTiled => include_str!("../../shaders/attention_tiled.wgsl"),
            ShaderId::AttentionRows => include_str!("../../shaders/attention_rows.wgsl"),
            ShaderId::AttentionLanes => include_str!("../../shaders/attention_lanes.wgsl"),
            ShaderId::MatVecFused => include_str!("../../shaders/matvec_fused.wgsl"),
            ShaderId::RopeKv => include_str!("../../shaders/rope_kv.wgsl"),
        }
    }
}

fn include_source(name: &str) -> Option<&'static str> {
    match name {
        "bytes" => Some(include_str!("../../shaders/bytes.wgsl")),
        "dequant" => Some(include_str!("../../shaders/dequant.wgsl")),
        "reduce" => Some(include_str!("../../shaders/reduce.wgsl")),
        "dot32" => Some(include_str!("../../shaders/dot32.wgsl")),
        "paged_kv" => Some(include_str!("../../shaders/paged_kv.wgsl")),
        "row_sum" => Some(include_str!("../../shaders/row_sum.wgsl")),
        "row_dot" => Some(include_str!("../../shaders/row_dot.wgsl")),
        "xgroup" => Some(include_str!("../../shaders/xgroup.wgsl")),
        "kv_words" => Some(include_str!("../../shaders/kv_words.wgsl")),
        "rope_math" => Some(include_str!("../../shaders/rope_math.wgsl")),
        _ => None,
    }
}

/// Expands includes and conditionals of `source` with `defines` set.
pub fn preprocess(source: &str, defines: &[&str]) -> Result<String, GpuError> {
    let mut out = String::with_capacity(source.len() * 2);
    let mut included = Vec::new();
    expand(source, defines, &mut included, &mut out)?;
    Ok(out)
}

fn expand<'a>(
    source: &'a str,
    defines: &[&str],
    included: &mut Vec<&'a str>,
    out: &mut String,
) -> Result<(), GpuError> {
    // Stack of (this branch is kept, some enclosing branch is dropped).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |stack: &[(bool, bool)]| {
        stack
            .last()
            .is_none_or(|&(keep, outer_off)| keep && !outer_off)
    };
    for (n, line) in source.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("//#if ") {
            let outer_off = !active(&stack);
            stack.push((defines.contains(&name.trim()), outer_off));
        } else if t == "//#else" {
            let top = stack.last_mut().ok_or_else(|| {
                GpuError::Preprocess(format!("line {}: #else without #if", n + 1))
            })?;
            top.0 = !top.0;
        } else if t == "//#endif" {
            stack.pop().ok_or_else(|| {
                GpuError::Preprocess(format!("line {}: #endif without #if", n + 1))
            })?;
        } else if let Some(rest) = t.strip_prefix("//#slot ") {
            if active(&stack) {
                expand_slot(rest, defines, out)?;
            }
        } else if let Some(name) = t.strip_prefix("//#include ") {
            if active(&stack) {
                let name = name.trim();
                let src = include_source(name)
                    .ok_or_else(|| GpuError::Preprocess(format!("unknown include {name:?}")))?;
                if !included.contains(&src) {
                    included.push(src);
                    expand(src, defines, included, out)?;
                }
            }
        } else if active(&stack) {
            out.push_str(line);
            out.push('\n');
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(GpuError::Preprocess("#if without #endif".into()))
    }
}

/// `//#slot NAME N` (see the module docs).
fn expand_slot(args: &str, defines: &[&str], out: &mut String) -> Result<(), GpuError> {
    let mut it = args.split_whitespace();
    let (Some(name), Some(slot), None) = (it.next(), it.next(), it.next()) else {
        return Err(GpuError::Preprocess(format!("bad #slot {args:?}")));
    };
    if slot.len() != 1 || !slot.chars().all(|c| c.is_ascii_digit()) {
        return Err(GpuError::Preprocess(format!(
            "bad slot number in #slot {args:?}"
        )));
    }
    let prefix = format!("S{slot}_");
    let slot_defines: Vec<&str> = defines
        .iter()
        .map(|d| d.strip_prefix(prefix.as_str()).unwrap_or(d))
        .collect();
    let src = include_source(name)
        .ok_or_else(|| GpuError::Preprocess(format!("unknown include {name:?}")))?;
    let mut body = String::new();
    expand(src, &slot_defines, &mut Vec::new(), &mut body)?;
    // The functions this expansion declares.
    let fns: Vec<String> = body
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("fn "))
        .filter_map(|l| l.split('(').next())
        .map(|n| n.trim().to_string())
        .collect();
    out.push_str(&rename_identifiers(&body, |id| {
        if id == "W" {
            Some(format!("W{slot}"))
        } else if fns.iter().any(|f| f == id) {
            Some(format!("{id}_{slot}"))
        } else {
            None
        }
    }));
    Ok(())
}

/// `src` with every identifier that `map` renames replaced (numbers and other tokens kept).
fn rename_identifiers(src: &str, map: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let tok = &src[start..i];
            match (c.is_ascii_digit(), map(tok)) {
                (false, Some(new)) => out.push_str(&new),
                _ => out.push_str(tok),
            }
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditionals_nest_and_includes_expand_once() {
        let src = "a\n//#if X\nb\n//#if Y\nc\n//#else\nd\n//#endif\n//#else\ne\n//#endif\nf\n";
        assert_eq!(preprocess(src, &["X"]).unwrap(), "a\nb\nd\nf\n");
        assert_eq!(preprocess(src, &["X", "Y"]).unwrap(), "a\nb\nc\nf\n");
        assert_eq!(preprocess(src, &["Y"]).unwrap(), "a\ne\nf\n");
        let inc = preprocess("//#include bytes\n//#include bytes\n", &[]).unwrap();
        assert_eq!(inc.matches("fn ld32").count(), 1);
    }

    #[test]
    fn slots_rename_functions_and_the_weight_binding() {
        let src = "//#slot row_dot 0\n//#slot row_dot 1\n";
        let out = preprocess(src, &["S0_TYPE_Q8_0", "S0_DOT32", "S1_TYPE_F16"]).unwrap();
        assert!(out.contains("fn row_dots_0(") && out.contains("fn row_dots_1("));
        assert!(out.contains("fn dot32_0(") && !out.contains("fn dot32_1("));
        assert!(out.contains("W0[") && out.contains("W1[") && !out.contains(" W["));
        assert_eq!(out.matches("fn ld32_0(").count(), 1);
        assert_eq!(
            rename_identifiers("a1 0xffu W[x] Wx", |s| (s == "W").then(|| "W2".into())),
            "a1 0xffu W2[x] Wx"
        );
        assert!(preprocess("//#slot row_dot\n", &[]).is_err());
    }

    #[test]
    fn unbalanced_directives_are_errors() {
        assert!(preprocess("//#if X\n", &[]).is_err());
        assert!(preprocess("//#endif\n", &[]).is_err());
        assert!(preprocess("//#include nope\n", &[]).is_err());
    }
}
