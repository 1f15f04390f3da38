//! A small JSON text writer for the plan, the crate's one large output: fixed
//! text is copied as it is and only names and values are escaped, exactly as
//! `serde_json` escapes them, so the text is the same as `serde_json` would
//! write for the same values.

use serde::Serialize;

/// JSON text being written.
pub(crate) struct JsonOut {
    buf: String,
}

impl JsonOut {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        JsonOut {
            buf: String::with_capacity(capacity),
        }
    }

    /// Makes room for `more` bytes. The text grows by an eighth at a time rather
    /// than doubling, so that a large text ends close to its size (large blocks
    /// are remapped when they grow, not copied).
    #[inline]
    fn room(&mut self, more: usize) {
        if self.buf.capacity() - self.buf.len() < more {
            self.buf
                .reserve_exact(more.max(self.buf.capacity() / 8).max(4096));
        }
    }

    /// Text that is already JSON (punctuation, keys, constants).
    #[inline]
    pub(crate) fn raw(&mut self, json: &str) {
        self.room(json.len());
        self.buf.push_str(json);
    }

    /// A JSON string.
    #[inline]
    pub(crate) fn string(&mut self, value: &str) {
        self.raw("\"");
        self.string_content(value);
        self.raw("\"");
    }

    /// The inside of a JSON string: `value` escaped, without the quotes.
    #[inline]
    pub(crate) fn string_content(&mut self, value: &str) {
        let bytes = value.as_bytes();
        if !any_needs_escape(bytes) {
            self.raw(value);
            return;
        }
        // At most six bytes (`\u00XX`) for each byte.
        self.room(value.len().saturating_mul(6));
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if !needs_escape(b) {
                continue;
            }
            // Escaped bytes are ASCII, so these are character boundaries.
            self.buf.push_str(value.get(start..i).unwrap_or_default());
            match b {
                b'"' => self.buf.push_str("\\\""),
                b'\\' => self.buf.push_str("\\\\"),
                0x08 => self.buf.push_str("\\b"),
                0x0c => self.buf.push_str("\\f"),
                b'\n' => self.buf.push_str("\\n"),
                b'\r' => self.buf.push_str("\\r"),
                b'\t' => self.buf.push_str("\\t"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.buf.push_str("\\u00");
                    for nibble in [b >> 4, b & 0xf] {
                        let digit = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                        self.buf.push(char::from(digit));
                    }
                }
            }
            start = i + 1;
        }
        self.buf.push_str(value.get(start..).unwrap_or_default());
    }

    /// A value written by `serde_json` (for the small parts of the output).
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        self.raw(&serde_json::to_string(value)?);
        Ok(())
    }

    pub(crate) fn finish(mut self) -> String {
        self.buf.shrink_to_fit();
        self.buf
    }
}

/// What `serde_json` escapes in a string: `"`, `\` and control characters below 0x20.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte needs escaping, eight bytes at a time.
#[inline]
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether some byte of `word` is below `n` (n <= 128); never wrong about
    // "none" (the standard bit trick).
    let below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGH != 0;
    let zero = |word: u64| below(word, 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            return true;
        };
        let word = u64::from_le_bytes(word);
        if below(word, 0x20)
            || zero(word ^ (ONES * u64::from(b'"')))
            || zero(word ^ (ONES * u64::from(b'\\')))
        {
            // Some byte needs escaping (or, rarely, the trick is unsure): look.
            if chunk.iter().any(|&b| needs_escape(b)) {
                return true;
            }
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_byte_to_escape() {
        for b in 0..=255u8 {
            for len in 1..20 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    if let Some(x) = bytes.get_mut(at) {
                        *x = b;
                    }
                    assert_eq!(
                        any_needs_escape(&bytes),
                        needs_escape(b),
                        "{b} at {at} of {len}"
                    );
                }
            }
        }
        assert!(!any_needs_escape("é日🦀 ok é日🦀".as_bytes()));
    }

    #[test]
    fn escapes_like_serde_json() {
        let mut samples: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        samples.extend(
            [
                "",
                "plain",
                "\"quoted\"",
                "back\\slash",
                "tab\tnew\nline\r",
                "\u{7f}del",
                "é ü 日本 🦀",
                "\u{2028}\u{2029}",
                "\u{0}\u{1f}",
                "</script>",
            ]
            .map(str::to_owned),
        );
        for s in &samples {
            let mut out = JsonOut::with_capacity(0);
            out.string(s);
            assert_eq!(
                out.finish(),
                serde_json::to_string(s).unwrap_or_default(),
                "{s:?}"
            );
        }
    }
}
