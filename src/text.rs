//! Forge text made safe to show: titles, comments and journal lines come from
//! whoever can open an issue, and a terminal acts on the control characters in
//! them (`ESC ] 0 ;` retitles the window, `ESC [ 2 J` clears the screen, 8-bit
//! CSI `\u{9b}` does the same without ESC). Here those characters are written
//! out visibly instead, so the reader sees what the text holds and nothing is
//! lost; [`crate::tmux::sanitize`] strips them instead, for what is pasted to
//! an agent.
//!
//! A backslash is left alone: `\x1b` typed by the author reads the same as an
//! escaped ESC, which misleads nobody's terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` on one line: every C0 and C1 control but tab, and DEL, written as
/// `\n`, `\r`, `\x1b`, `\x7f`, `\u{9b}`. For table cells and headings, where a
/// newline would start a line that looks like the next entry.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`escape_line`] but keeping line breaks, for text whose lines are
/// legitimate (a comment, a multi-line journal entry). CRLF becomes LF; a lone
/// CR, which would move the cursor back over what was printed, is escaped.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// JSON text with DEL and the C1 controls written as `\u007f`, `\u009b`:
/// `serde_json` escapes only the C0 controls, and a terminal can take a raw
/// `\u{9b}` as CSI. Still the same JSON, since those characters can only
/// appear inside its strings.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    let unescaped = |c: &char| ('\u{7f}'..='\u{9f}').contains(c);
    if !json.chars().any(|c| unescaped(&c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if unescaped(&c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let shown_as_is = |c: char| !c.is_control() || c == '\t' || (keep_newlines && c == '\n');
    if text.chars().all(shown_as_is) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if keep_newlines && chars.peek() == Some(&'\n') => {}
            c if shown_as_is(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            // C0 and DEL: one byte in UTF-8, written as that byte.
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // C1: two bytes in UTF-8, so written as the code point.
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}
