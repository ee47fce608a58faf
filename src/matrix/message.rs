//! What a notice looks like in the room: the `m.room.message` content (plain
//! `body` plus HTML `formatted_body`), as a thread root or as a message in the
//! issue's thread, with a proper mention when a human must act. Pure, so the
//! sender only decides where it goes.

use serde_json::{Value, json};

use crate::notify::{Notice, Subject};
use crate::redact::Redactor;

/// The sentence every escalation ends with, so the human knows where to answer.
pub const ANSWER_HINT: &str = "Reply in this thread to answer the agent.";

/// The text of one notice, before it is placed in a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: String,
    pub html: String,
    /// User ids in `m.mentions` (empty: nobody is pinged).
    pub mentions: Vec<String>,
}

/// The first message of an issue: what was claimed, the session and a link,
/// then the notice itself when the first notice is not the claim (an issue
/// claimed before Matrix was configured).
pub fn root(
    subject: &Subject,
    notice: &Notice,
    redactor: &Redactor,
    mention: Option<&str>,
) -> Rendered {
    let title = redactor.redact(&subject.title);
    let url = redactor.redact(&subject.issue_url);
    let name = format!("{}#{}", subject.project, subject.issue);
    let mut body = format!(
        "forgehand claimed {name}: {title}\nSession: {}\n{url}",
        subject.session
    );
    let mut html = format!(
        "<b>forgehand claimed <a href=\"{}\">{}</a>: {}</b><br>Session: <code>{}</code>",
        escape(&url),
        escape(&name),
        escape(&title),
        escape(&subject.session)
    );
    let mut mentions = Vec::new();
    if *notice != Notice::Claimed {
        let inner = in_thread(subject, notice, redactor, mention);
        body.push_str("\n\n");
        body.push_str(&inner.body);
        html.push_str("<br><br>");
        html.push_str(&inner.html);
        mentions = inner.mentions;
    }
    Rendered {
        body: redactor.redact(&body),
        html: redactor.redact(&html),
        mentions,
    }
}

/// A notice as a message in the issue's thread.
pub fn in_thread(
    subject: &Subject,
    notice: &Notice,
    redactor: &Redactor,
    mention: Option<&str>,
) -> Rendered {
    // Redact the raw text before escaping it: a secret containing `&` or `<`
    // would no longer match once escaped.
    let text = redactor.redact(&notice.to_string());
    let (body, html) = match notice {
        Notice::PrOpened { pr } => {
            let link = pull_url(&subject.issue_url, pr.0);
            (
                format!("{text}: {link}"),
                format!("<a href=\"{}\">PR #{pr}</a> opened", escape(&link)),
            )
        }
        Notice::Merged { pr, merge_commit } => {
            let link = pull_url(&subject.issue_url, pr.0);
            let commit = match merge_commit {
                Some(c) => format!(" as <code>{}</code>", escape(&c.0)),
                None => String::new(),
            };
            (
                format!("{text} ({link})"),
                format!("<a href=\"{}\">PR #{pr}</a> merged{commit}", escape(&link)),
            )
        }
        _ => (text.clone(), escape(&text)),
    };
    let mut out = Rendered {
        body,
        html,
        mentions: Vec::new(),
    };
    if notice.needs_human() {
        if let Some(user) = mention {
            out.body = format!("{user}: {}", out.body);
            out.html = format!(
                "<a href=\"https://matrix.to/#/{}\">{}</a>: {}",
                escape(user),
                escape(user),
                out.html
            );
            out.mentions.push(user.to_string());
        }
        out.body.push('\n');
        out.body.push_str(ANSWER_HINT);
        out.html.push_str("<br>");
        out.html.push_str(ANSWER_HINT);
    }
    out.body = redactor.redact(&out.body);
    out.html = redactor.redact(&out.html);
    out
}

/// The event content for a rendered notice; `thread_root` places it in that
/// thread (with the reply fallback clients without threads show).
pub fn content(rendered: &Rendered, needs_human: bool, thread_root: Option<&str>) -> Value {
    // `m.notice` is the bot convention, but Element's default push rules
    // silence notices even when they mention someone: escalations are `m.text`.
    let msgtype = if needs_human { "m.text" } else { "m.notice" };
    let mut content = json!({
        "msgtype": msgtype,
        "body": rendered.body,
        "format": "org.matrix.custom.html",
        "formatted_body": rendered.html,
        // Always present, so clients never guess mentions from the body text.
        "m.mentions": { "user_ids": rendered.mentions },
    });
    if let Some(root) = thread_root {
        content["m.relates_to"] = json!({
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": true,
            "m.in_reply_to": { "event_id": root },
        });
    }
    content
}

/// The content of a ✅ reaction to `event_id`.
pub fn reaction(event_id: &str) -> Value {
    json!({
        "m.relates_to": {
            "rel_type": "m.annotation",
            "event_id": event_id,
            "key": "✅",
        }
    })
}

/// `…/issues/42` → `…/pulls/7` (Forgejo and Gitea paths); a URL of another
/// shape links the issue, which links its PR.
fn pull_url(issue_url: &str, pr: u64) -> String {
    match issue_url.rfind("/issues/") {
        Some(i) => format!("{}/pulls/{pr}", &issue_url[..i]),
        None => issue_url.to_string(),
    }
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The answer itself from a reply's body: clients quote the message they
/// answer (`> <@bot> …`) before a blank line; that quote is not the answer.
pub fn strip_reply_fallback(body: &str) -> String {
    let mut lines = body.lines().peekable();
    if lines.peek().is_some_and(|l| l.starts_with("> ")) {
        while lines.peek().is_some_and(|l| l.starts_with('>')) {
            lines.next();
        }
        if lines.peek().is_some_and(|l| l.is_empty()) {
            lines.next();
        }
    }
    lines.collect::<Vec<_>>().join("\n").trim().to_string()
}
