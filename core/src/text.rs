//! Text that came from outside (Consul, AWS, tags, files), made safe to show:
//! cut to a length fit for a log line or a diagnostic ([`clip`]), and with its
//! control characters escaped for a terminal ([`printable`]), so a body holding
//! `\n` or `\x1b[2K` cannot forge lines or colours in the command line's output.

use std::borrow::Cow;
use std::fmt::Write;

/// Longest text (in characters) copied into a diagnostic or a message.
pub const MAX_CHARS: usize = 300;

/// `text` cut to at most `max` characters, with `… (N bytes)` when cut, and
/// its control characters escaped ([`printable`]): what a message may quote of
/// text that came from outside.
pub fn clip_to(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => printable(text),
        Some((at, _)) => Cow::Owned(format!(
            "{}… ({} bytes)",
            printable(text.get(..at).unwrap_or_default()),
            text.len()
        )),
    }
}

/// `text` cut to [`MAX_CHARS`].
pub fn clip(text: &str) -> String {
    clip_to(text, MAX_CHARS).into_owned()
}

/// Whether a character would act on a terminal rather than show: C0 and C1
/// controls, DEL, and the bidirectional overrides and isolates that reorder a line.
fn acts(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character written as an escape (`\n`, `\t`, `\r`,
/// `\u{1b}`…), so what is shown stays on its line, in the terminal's own colours.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if acts(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("synced: 3 created"), "synced: 3 created");
        assert_eq!(
            printable("HTTP 500: boom\n\u{1b}[2K\u{1b}[32msynced"),
            "HTTP 500: boom\\n\\u{1b}[2K\\u{1b}[32msynced"
        );
        assert_eq!(
            printable("a\u{202e}b\u{85}c\u{7f}"),
            "a\\u{202e}b\\u{85}c\\u{7f}"
        );
        assert!(!printable("x\u{9b}31m").contains('\u{9b}'));
    }

    #[test]
    fn long_text_is_cut_on_a_character() {
        let long = "é".repeat(400);
        let cut = clip(&long);
        assert!(cut.starts_with(&"é".repeat(300)));
        assert!(cut.ends_with("… (800 bytes)"));
        assert_eq!(clip("short"), "short");
    }
}
