//! Durations written in project files as `"90s"`, `"30m"`, `"2h"`, `"1d"`,
//! `"500ms"` or compounds such as `"1h30m"` (DESIGN §4).

use std::time::Duration;

/// Shown in every error so the user sees what would have been accepted.
const ACCEPTED: &str = "use a whole number followed by a unit (ms, s, m, h, d), \
     e.g. \"500ms\", \"90s\", \"30m\", \"2h\", \"1d\", or a combination like \"1h30m\"";

/// Parses a duration string. The error is a sentence for a user, naming the
/// input and the accepted forms; the caller adds the file position.
pub fn parse(text: &str) -> Result<Duration, String> {
    let fail = |why: &str| Err(format!("invalid duration \"{text}\": {why}; {ACCEPTED}"));
    if text.is_empty() {
        return fail("it is empty");
    }
    if text.starts_with('-') {
        return fail("it is negative");
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return fail(&format!("expected a number at \"{rest}\""));
        }
        let Ok(amount) = rest[..digits].parse::<u64>() else {
            return fail("the number is too large");
        };
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, tail) = rest.split_at(unit_len);
        let part = match unit {
            "ms" => Some(Duration::from_millis(amount)),
            "s" => Some(Duration::from_secs(amount)),
            "m" => amount.checked_mul(60).map(Duration::from_secs),
            "h" => amount.checked_mul(3600).map(Duration::from_secs),
            "d" => amount.checked_mul(86_400).map(Duration::from_secs),
            "" if tail.is_empty() => return fail(&format!("the number {amount} has no unit")),
            "" => return fail(&format!("unexpected \"{tail}\" after {amount}")),
            other => return fail(&format!("unknown unit \"{other}\"")),
        };
        let Some(sum) = part.and_then(|p| total.checked_add(p)) else {
            return fail("it is too large");
        };
        total = sum;
        rest = tail;
    }
    if total.is_zero() {
        return fail("it must be greater than zero");
    }
    Ok(total)
}
