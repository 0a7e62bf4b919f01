//! llama.cpp's hand-written equivalents of the common BPE pre-tokenizer regexes
//! (`unicode_regex_split_custom_*` in llama.cpp's unicode.cpp), ported step for step so that
//! edge cases (`\s+(?!\S)`, case-insensitive contractions, digit grouping) split exactly as
//! llama.cpp does. Each function splits one chunk `cpts[start..end]` and appends the lengths (in
//! code points) of its pieces to `out`.

use super::unicode::CptFlags;

/// Read access to one chunk: code points and flags, "nothing" outside the chunk.
struct Chunk<'a> {
    cpts: &'a [char],
    start: usize,
    end: usize,
}

impl Chunk<'_> {
    fn cpt(&self, pos: usize) -> Option<char> {
        if (self.start..self.end).contains(&pos) {
            self.cpts.get(pos).copied()
        } else {
            None
        }
    }
    fn flags(&self, pos: usize) -> CptFlags {
        self.cpt(pos).map(CptFlags::of).unwrap_or(CptFlags::NONE)
    }
    fn is(&self, pos: usize, c: char) -> bool {
        self.cpt(pos) == Some(c)
    }
    fn is_cr_or_lf(&self, pos: usize) -> bool {
        matches!(self.cpt(pos), Some('\r' | '\n'))
    }
    /// Lower-cased code point. Only ASCII letters are compared against, and no non-ASCII code
    /// point lower-cases to one of the contraction letters, so ASCII lower-casing is exact here.
    fn lower(&self, pos: usize) -> Option<char> {
        self.cpt(pos).map(|c| c.to_ascii_lowercase())
    }
}

/// Emits pieces: each call to `add(end)` closes the piece that began at the previous end.
struct Pieces<'o> {
    prev_end: usize,
    out: &'o mut Vec<usize>,
}

impl Pieces<'_> {
    fn add(&mut self, end: usize) -> usize {
        let len = end.saturating_sub(self.prev_end);
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

/// Length (2 or 3) of an English contraction (`'s 't 're 've 'm 'll 'd`) at `pos`, if any.
fn contraction_len(c: &Chunk<'_>, pos: usize, case_insensitive: bool) -> Option<usize> {
    if !c.is(pos, '\'') || pos + 1 >= c.end {
        return None;
    }
    let get = |p: usize| {
        if case_insensitive {
            c.lower(p)
        } else {
            c.cpt(p)
        }
    };
    let next = get(pos + 1);
    if matches!(next, Some('s' | 't' | 'm' | 'd')) {
        return Some(2);
    }
    if pos + 2 < c.end {
        let pair = (next, get(pos + 2));
        if matches!(
            pair,
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
        ) {
            return Some(3);
        }
    }
    None
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
pub(crate) fn split_gpt2(cpts: &[char], start: usize, end: usize, out: &mut Vec<usize>) {
    let c = Chunk { cpts, start, end };
    let mut pieces = Pieces {
        prev_end: start,
        out,
    };
    let mut pos = start;
    while pos < end {
        let cpt = c.cpt(pos);
        let flags = c.flags(pos);
        if let Some(n) = contraction_len(&c, pos, false) {
            pos += pieces.add(pos + n);
            continue;
        }
        let space = cpt == Some(' ');
        let mut flags2 = if space { c.flags(pos + 1) } else { flags };
        // <space>?\p{L}+  /  <space>?\p{N}+  /  <space>?[^\s\p{L}\p{N}]+
        let runs: [fn(CptFlags) -> bool; 3] = [
            |f| f.is_letter(),
            |f| f.is_number(),
            |f| !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.is_defined(),
        ];
        if let Some(run) = runs.iter().find(|run| run(flags2)) {
            pos += usize::from(space);
            while run(flags2) {
                pos += 1;
                flags2 = c.flags(pos);
            }
            pieces.add(pos);
            continue;
        }
        let mut n_ws = 0;
        while c.flags(pos + n_ws).is_whitespace() {
            n_ws += 1;
        }
        if n_ws > 1 && c.cpt(pos + n_ws).is_some() {
            // \s+(?!\S): leave the last whitespace for the next word
            pos += n_ws - 1;
            pieces.add(pos);
            continue;
        }
        if n_ws > 0 {
            pos += n_ws;
            pieces.add(pos);
            continue;
        }
        pos += 1;
        pieces.add(pos);
    }
}

/// The Llama 3 family (`max_digits` 3, `marks` false), Qwen2 (`max_digits` 1) and Qwen3.5
/// (`max_digits` 1, `marks` true: letter runs also take `\p{M}`):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
pub(crate) fn split_llama3(
    cpts: &[char],
    start: usize,
    end: usize,
    max_digits: usize,
    marks: bool,
    out: &mut Vec<usize>,
) {
    let c = Chunk { cpts, start, end };
    let mut pieces = Pieces {
        prev_end: start,
        out,
    };
    let wordish = |f: CptFlags| f.is_letter() || (marks && f.is_accent_mark());
    let mut pos = start;
    while pos < end {
        let cpt = c.cpt(pos);
        let flags = c.flags(pos);
        if let Some(n) = contraction_len(&c, pos, true) {
            pos += pieces.add(pos + n);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(c.is_cr_or_lf(pos) || flags.is_number())
            && (wordish(flags) || wordish(c.flags(pos + 1)))
        {
            pos += 1;
            while wordish(c.flags(pos)) {
                pos += 1;
            }
            pieces.add(pos);
            continue;
        }
        // \p{N}{1,max_digits}
        if flags.is_number() {
            let mut ini = pos;
            while c.flags(pos).is_number() {
                pos += 1;
                if pos - ini >= max_digits {
                    pieces.add(pos);
                    ini = pos;
                }
            }
            pieces.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*  (llama.cpp tests the first code point's own flags
        // for "defined", not the one after the space; kept as is)
        let other = |f: CptFlags| !(f.is_whitespace() || wordish(f) || f.is_number());
        let space = cpt == Some(' ');
        let mut flags2 = if space { c.flags(pos + 1) } else { flags };
        if other(flags2) && flags.is_defined() {
            pos += usize::from(space);
            while other(flags2) && flags2.is_defined() {
                pos += 1;
                flags2 = c.flags(pos);
            }
            while c.is_cr_or_lf(pos) {
                pos += 1;
            }
            pieces.add(pos);
            continue;
        }
        let mut n_ws = 0;
        let mut last_end_r_or_n = 0;
        while c.flags(pos + n_ws).is_whitespace() {
            if c.is_cr_or_lf(pos + n_ws) {
                last_end_r_or_n = pos + n_ws + 1;
            }
            n_ws += 1;
        }
        // \s*[\r\n]+
        if last_end_r_or_n > 0 {
            pos = last_end_r_or_n;
            pieces.add(pos);
            continue;
        }
        // \s+(?!\S)
        if n_ws > 1 && c.cpt(pos + n_ws).is_some() {
            pos += n_ws - 1;
            pieces.add(pos);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            pieces.add(pos);
            continue;
        }
        pos += 1;
        pieces.add(pos);
    }
}

/// `[^\n]+|[\n]+`: runs of newlines and runs of everything else.
pub(crate) fn split_newlines(cpts: &[char], start: usize, end: usize, out: &mut Vec<usize>) {
    let mut pos = start;
    while pos < end {
        let is_nl = cpts.get(pos) == Some(&'\n');
        let run_start = pos;
        while pos < end && (cpts.get(pos) == Some(&'\n')) == is_nl {
            pos += 1;
        }
        out.push(pos - run_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, f: impl Fn(&[char], usize, usize, &mut Vec<usize>)) -> Vec<String> {
        let cpts: Vec<char> = text.chars().collect();
        let mut lens = Vec::new();
        f(&cpts, 0, cpts.len(), &mut lens);
        let mut at = 0;
        lens.iter()
            .map(|&n| {
                let s: String = cpts[at..at + n].iter().collect();
                at += n;
                s
            })
            .collect()
    }

    #[test]
    fn gpt2_splits_like_its_regex() {
        assert_eq!(
            pieces("Hello world's  end 42!!\n", split_gpt2),
            ["Hello", " world", "'s", " ", " end", " 42", "!!", "\n"]
        );
    }

    #[test]
    fn llama3_groups_three_digits_and_keeps_newlines() {
        let f = |c: &[char], s, e, o: &mut Vec<usize>| split_llama3(c, s, e, 3, false, o);
        assert_eq!(
            pieces("12345 I'M ok\n\n x", f),
            ["123", "45", " I", "'M", " ok", "\n\n", " x"]
        );
        let q = |c: &[char], s, e, o: &mut Vec<usize>| split_llama3(c, s, e, 1, false, o);
        assert_eq!(pieces("123", q), ["1", "2", "3"]);
    }
}
