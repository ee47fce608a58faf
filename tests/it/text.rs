//! Escaping forge text for display: controls written out, the rest untouched.

use std::borrow::Cow;

use forgehand::text::{escape_line, escape_lines};

#[test]
fn controls_are_written_out() {
    assert_eq!(
        escape_line("fix\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\u{0}\u{85}"),
        "fix\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31m\\x7f\\x00\\u{85}"
    );
}

#[test]
fn plain_text_is_borrowed_and_tabs_and_unicode_stay() {
    let text = "Add a greeting\tà la «française» ✓ C:\\x1b";
    assert!(matches!(escape_line(text), Cow::Borrowed(t) if t == text));
    assert!(matches!(escape_lines("two\nlines"), Cow::Borrowed(_)));
}

#[test]
fn newlines_are_escaped_on_one_line_and_kept_in_lines() {
    assert_eq!(escape_line("a\nb\r\nc\rd"), "a\\nb\\r\\nc\\rd");
    assert_eq!(escape_lines("a\nb\r\nc\rd"), "a\nb\nc\\rd");
}
