//! Code point categories as llama.cpp sees them, and GPT-2's byte ↔ code point mapping.

use std::sync::OnceLock;

use super::unicode_data::{RANGE_FLAGS, WHITESPACE};

/// Category flags of one code point (llama.cpp's `unicode_cpt_flags`, minus case/NFD bits).
/// `CptFlags::NONE` (all zero) stands for "outside the text being split".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct CptFlags(u16);

impl CptFlags {
    pub const NONE: CptFlags = CptFlags(0);
    const UNDEFINED: u16 = 0x0001;
    const NUMBER: u16 = 0x0002;
    const LETTER: u16 = 0x0004;
    const ACCENT_MARK: u16 = 0x0010;
    const PUNCTUATION: u16 = 0x0020;
    const SYMBOL: u16 = 0x0040;
    const CATEGORIES: u16 = 0x00FF;
    const WHITESPACE: u16 = 0x0100;

    pub fn of(c: char) -> CptFlags {
        let cp = c as u32;
        // Last range whose start is <= cp; the table starts at 0, so there always is one.
        let idx = RANGE_FLAGS.partition_point(|&(start, _)| start <= cp);
        let mut bits = match idx.checked_sub(1).and_then(|i| RANGE_FLAGS.get(i)) {
            Some(&(_, f)) => u16::from(f),
            None => Self::UNDEFINED,
        };
        if WHITESPACE.binary_search(&cp).is_ok() {
            bits |= Self::WHITESPACE;
        }
        CptFlags(bits)
    }

    pub fn is_defined(self) -> bool {
        self.0 != 0
    }
    pub fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    pub fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    pub fn is_accent_mark(self) -> bool {
        self.0 & Self::ACCENT_MARK != 0
    }
    pub fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }

    /// The category placeholder llama.cpp substitutes for a non-ASCII code point before running a
    /// `std::regex` over the text ("collapsed" text), see `pretokenize::regex_split`.
    pub fn collapsed_category(self) -> Category {
        if self.is_whitespace() {
            return Category::Whitespace;
        }
        match self.0 & Self::CATEGORIES {
            Self::NUMBER => Category::Number,
            Self::LETTER => Category::Letter,
            Self::PUNCTUATION => Category::Punctuation,
            Self::ACCENT_MARK => Category::AccentMark,
            Self::SYMBOL => Category::Symbol,
            _ => Category::Other,
        }
    }
}

/// The categories `\p{..}` can name in llama.cpp's regexes, plus whitespace and "other".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Number,
    Letter,
    Punctuation,
    AccentMark,
    Symbol,
    Whitespace,
    Other,
}

/// GPT-2's reversible byte → printable code point table (`bytes_to_unicode`).
fn byte_to_char_table() -> &'static [char; 256] {
    static TABLE: OnceLock<[char; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\0'; 256];
        let mut next_extra = 256u32;
        for (b, slot) in table.iter_mut().enumerate() {
            let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
            let cp = if printable {
                b as u32
            } else {
                let cp = next_extra;
                next_extra += 1;
                cp
            };
            // All values are below 0x144, valid scalar values.
            *slot = char::from_u32(cp).unwrap_or('\u{FFFD}');
        }
        table
    })
}

/// The code point GPT-2's byte-level BPE uses for byte `b`.
pub(crate) fn byte_to_char(b: u8) -> char {
    byte_to_char_table()[usize::from(b)]
}

/// The byte a GPT-2 byte-level code point stands for, if it is one.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => u8::try_from(cp).ok(),
        0x100..=0x143 => byte_to_char_table()
            .iter()
            .position(|&t| t == c)
            .and_then(|i| u8::try_from(i).ok()),
        _ => None,
    }
}

/// Byte-level encoding of a word: each UTF-8 byte becomes its GPT-2 code point.
pub(crate) fn byte_encode(word: &str) -> String {
    word.bytes().map(byte_to_char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_match_llama_cpp_table() {
        assert!(CptFlags::of('a').is_letter());
        assert!(CptFlags::of('é').is_letter());
        assert!(CptFlags::of('3').is_number());
        assert!(CptFlags::of('½').is_number());
        assert!(CptFlags::of(' ').is_whitespace());
        assert!(CptFlags::of('\u{3000}').is_whitespace());
        assert!(CptFlags::of('\u{0301}').is_accent_mark());
        assert_eq!(
            CptFlags::of('!').collapsed_category(),
            Category::Punctuation
        );
        assert_eq!(CptFlags::of('$').collapsed_category(), Category::Symbol);
        assert!(CptFlags::of('\u{10FFFF}').is_defined());
    }

    #[test]
    fn byte_table_round_trips() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
