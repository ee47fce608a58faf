//! `MatrixNotifier` against a real Synapse: a thread per issue, mentions on
//! escalations, restarts, an outage, replies read back and acknowledged, and
//! no secret in the room. The room is read as alice through the plain
//! client-server API, never through forgehand's own code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use forgehand::config::MatrixConfig;
use forgehand::forge::{CommitSha, PrNumber};
use forgehand::matrix::{MatrixArgs, MatrixNotifier, MatrixTiming, OnReply};
use forgehand::notify::{Notice, Notifier, Subject};
use forgehand::redact::Redactor;
use forgehand::store::{Db, Store};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::synapse::Synapse;

const PROJECT: &str = "proj";
const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "hunter2-5ecret-value";

struct Fixture {
    synapse: Synapse,
    _dir: TempDir,
    store: Arc<Store>,
    /// (project, issue) of every `on_reply` call.
    replies: mpsc::UnboundedReceiver<(String, u64)>,
    on_reply: OnReply,
}

impl Fixture {
    async fn new() -> Fixture {
        let synapse = Synapse::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(&dir.path().join("forgehand.db")).expect("store"));
        let (tx, replies) = mpsc::unbounded_channel();
        let tx = Mutex::new(tx);
        let on_reply: OnReply = Arc::new(move |project: &str, issue: u64| {
            let _ = tx.lock().unwrap().send((project.to_string(), issue));
        });
        Fixture {
            synapse,
            _dir: dir,
            store,
            replies,
            on_reply,
        }
    }

    fn notifier(&self) -> MatrixNotifier {
        MatrixNotifier::start(MatrixArgs {
            project: PROJECT.into(),
            config: MatrixConfig {
                homeserver: self.synapse.url.clone(),
                room_id: self.synapse.room_id.clone(),
                user_id: self.synapse.bot.user_id.clone(),
                token_env: "MATRIX_TOKEN".into(),
                mention_user: Some(self.synapse.alice.user_id.clone()),
                outbox_max_age: MatrixConfig::DEFAULT_OUTBOX_MAX_AGE,
            },
            token: self.synapse.bot.token.clone(),
            store: self.store.clone(),
            redactor: Redactor::new([SECRET.to_string(), self.synapse.bot.token.clone()]),
            on_reply: self.on_reply.clone(),
            timing: MatrixTiming {
                retry_initial: Duration::from_millis(100),
                retry_max: Duration::from_millis(500),
                sync_timeout: Duration::from_secs(2),
            },
        })
        .expect("starting the notifier")
    }

    async fn messages(&self, what: &str, n: usize) -> Vec<Value> {
        let events = self
            .synapse
            .wait_events(what, WAIT, |events| messages(events).len() >= n)
            .await;
        self.assert_clean(&events);
        messages(&events)
    }

    /// Neither the secret nor the bot's token is anywhere in the room.
    fn assert_clean(&self, events: &[Value]) {
        let all = serde_json::to_string(events).unwrap();
        assert!(!all.contains(SECRET), "a secret reached the room: {all}");
        assert!(
            !all.contains(&self.synapse.bot.token),
            "the bot's token reached the room"
        );
    }
}

fn subject(issue: u64) -> Subject {
    Subject {
        project: PROJECT.into(),
        issue,
        title: format!("Make widget {issue} blue"),
        session: format!("dev-{PROJECT}-{issue}"),
        issue_url: format!("http://forge.example/acme/widget/issues/{issue}"),
    }
}

fn messages(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .cloned()
        .collect()
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

fn html(event: &Value) -> &str {
    event["content"]["formatted_body"]
        .as_str()
        .unwrap_or_default()
}

fn thread_of(event: &Value) -> Option<&str> {
    let rel = &event["content"]["m.relates_to"];
    (rel["rel_type"] == "m.thread").then(|| rel["event_id"].as_str().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_opens_a_thread_and_later_notices_land_in_it() {
    let f = Fixture::new().await;
    let n = f.notifier();
    n.notify(&subject(42), Notice::Claimed);
    n.notify(&subject(42), Notice::PrOpened { pr: PrNumber(7) });
    n.notify(
        &subject(42),
        Notice::Merged {
            pr: PrNumber(7),
            merge_commit: Some(CommitSha("abc1234def".into())),
        },
    );
    let msgs = f.messages("three messages", 3).await;
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    let root = &msgs[0];
    let root_id = root["event_id"].as_str().unwrap();
    assert_eq!(thread_of(root), None, "the root is not in a thread");
    for want in [
        "proj#42",
        "Make widget 42 blue",
        "dev-proj-42",
        "http://forge.example/acme/widget/issues/42",
    ] {
        assert!(
            body(root).contains(want),
            "root body lacks {want}: {root:#}"
        );
    }
    assert!(html(root).contains("<a href=\"http://forge.example/acme/widget/issues/42\">"));
    assert_eq!(root["content"]["format"], "org.matrix.custom.html");
    assert_eq!(
        f.store.matrix_thread(PROJECT, 42).await.unwrap().as_deref(),
        Some(root_id)
    );

    let pr = &msgs[1];
    assert_eq!(thread_of(pr), Some(root_id));
    assert!(
        body(pr).contains("http://forge.example/acme/widget/pulls/7"),
        "{pr:#}"
    );
    assert!(html(pr).contains("<a href=\"http://forge.example/acme/widget/pulls/7\">"));
    let merged = &msgs[2];
    assert_eq!(thread_of(merged), Some(root_id));
    assert!(body(merged).contains("abc1234def"), "{merged:#}");

    // Another issue gets its own thread.
    n.notify(&subject(43), Notice::Claimed);
    let msgs = f.messages("the second issue's root", 4).await;
    assert_eq!(thread_of(&msgs[3]), None);
    assert!(body(&msgs[3]).contains("proj#43"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_mentions_the_human_and_says_how_to_answer() {
    let f = Fixture::new().await;
    let n = f.notifier();
    let alice = f.synapse.alice.user_id.clone();
    n.notify(&subject(5), Notice::Claimed);
    n.notify(
        &subject(5),
        Notice::Escalation {
            reason: format!("which colour? the key is {SECRET}"),
        },
    );
    n.notify(
        &subject(5),
        Notice::CiFailed {
            attempt: 2,
            max: 3,
            contexts: vec!["ci/lint".into()],
        },
    );
    let msgs = f.messages("escalation and CI", 3).await;
    let esc = &msgs[1];
    assert_eq!(esc["content"]["m.mentions"]["user_ids"], json!([alice]));
    assert!(
        html(esc).contains(&format!("<a href=\"https://matrix.to/#/{alice}\">")),
        "{esc:#}"
    );
    assert!(body(esc).contains("which colour?"));
    assert!(body(esc).contains("[REDACTED]"), "{esc:#}");
    assert!(body(esc).ends_with("Reply in this thread to answer the agent."));
    assert!(html(esc).ends_with("Reply in this thread to answer the agent."));
    assert_eq!(thread_of(esc), msgs[0]["event_id"].as_str());

    let ci = &msgs[2];
    assert!(
        body(ci).contains("2/3") && body(ci).contains("ci/lint"),
        "{ci:#}"
    );
    assert_eq!(ci["content"]["m.mentions"]["user_ids"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_notifier_keeps_the_issue_thread() {
    let f = Fixture::new().await;
    let first = f.notifier();
    first.notify(&subject(9), Notice::Claimed);
    assert!(first.flush(WAIT).await, "the claim was not sent");
    drop(first);

    let second = f.notifier();
    second.notify(&subject(9), Notice::ChangesRequested { round: 1, max: 3 });
    let msgs = f.messages("the message after the restart", 2).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(thread_of(&msgs[1]), msgs[0]["event_id"].as_str());
    assert!(body(&msgs[1]).contains("round 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_during_an_outage_arrive_exactly_once() {
    let mut f = Fixture::new().await;
    let n = f.notifier();
    n.notify(&subject(3), Notice::Claimed);
    assert!(n.flush(WAIT).await, "the claim was not sent");

    f.synapse.stop();
    let reasons: Vec<String> = (1..=3).map(|i| format!("outage message {i}")).collect();
    for r in &reasons {
        n.notify(&subject(3), Notice::Blocked { reason: r.clone() });
    }
    assert!(
        !n.flush(Duration::from_millis(700)).await,
        "nothing can be sent while Synapse is down"
    );
    f.synapse.resume().await;
    assert!(
        n.flush(WAIT).await,
        "the queue did not drain after the outage"
    );

    let msgs = f.messages("the queued messages", 4).await;
    for r in &reasons {
        let count = msgs.iter().filter(|m| body(m).contains(r.as_str())).count();
        assert_eq!(count, 1, "{r:?} arrived {count} times");
    }
    // In order, each in the issue's thread.
    let bodies: Vec<&str> = msgs.iter().skip(1).map(body).collect();
    for (b, r) in bodies.iter().zip(&reasons) {
        assert!(b.contains(r.as_str()), "out of order: {bodies:?}");
    }
    assert!(
        msgs.iter()
            .skip(1)
            .all(|m| thread_of(m) == msgs[0]["event_id"].as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_reply_is_recorded_once_announced_and_acknowledged() {
    let mut f = Fixture::new().await;
    let n = f.notifier();
    n.notify(&subject(11), Notice::Claimed);
    n.notify(
        &subject(11),
        Notice::Escalation {
            reason: "which colour?".into(),
        },
    );
    let msgs = f.messages("the escalation", 2).await;
    let root = msgs[0]["event_id"].as_str().unwrap().to_string();

    // Outside any thread: not an answer.
    f.synapse
        .send_as_alice(json!({"msgtype": "m.text", "body": "hello room"}))
        .await;
    let in_thread = |text: &str| {
        json!({
            "msgtype": "m.text",
            "body": text,
            "m.relates_to": {
                "rel_type": "m.thread", "event_id": root, "is_falling_back": true,
                "m.in_reply_to": {"event_id": root},
            },
        })
    };
    let reply_id = f.synapse.send_as_alice(in_thread("Blue, please.")).await;

    let got = tokio::time::timeout(WAIT, f.replies.recv())
        .await
        .expect("on_reply was not called")
        .expect("reply channel");
    assert_eq!(got, (PROJECT.to_string(), 11));
    let pending = f.store.pending_chat_replies(PROJECT, 11).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert_eq!(pending[0].body, "Blue, please.");
    assert_eq!(pending[0].author, f.synapse.alice.user_id);
    assert_eq!(pending[0].event_id, reply_id);
    let journal = f.store.events(PROJECT, Some(11)).await.unwrap();
    assert!(
        journal
            .iter()
            .any(|e| e.kind == "chat_reply" && e.detail.contains(&reply_id)),
        "{journal:#?}"
    );

    n.acknowledge(PROJECT, 11, &reply_id);
    let bot = f.synapse.bot.user_id.clone();
    let events = f
        .synapse
        .wait_events("the ✅ reaction", WAIT, |events| {
            events.iter().any(|e| {
                e["type"] == "m.reaction"
                    && e["sender"] == bot.as_str()
                    && e["content"]["m.relates_to"]["event_id"] == reply_id.as_str()
                    && e["content"]["m.relates_to"]["key"] == "✅"
            })
        })
        .await;
    f.assert_clean(&events);
    f.store
        .mark_chat_reply_delivered(pending[0].id)
        .await
        .unwrap();
    assert!(
        f.store
            .pending_chat_replies(PROJECT, 11)
            .await
            .unwrap()
            .is_empty()
    );

    // After a restart the old reply is not recorded again; a new one is.
    drop(n);
    let _n = f.notifier();
    let second_id = f.synapse.send_as_alice(in_thread("Dark blue.")).await;
    let got = tokio::time::timeout(WAIT, f.replies.recv())
        .await
        .expect("on_reply was not called for the second reply")
        .expect("reply channel");
    assert_eq!(got, (PROJECT.to_string(), 11));
    let pending = f.store.pending_chat_replies(PROJECT, 11).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert_eq!(pending[0].event_id, second_id);
    assert!(
        f.replies.try_recv().is_err(),
        "on_reply fired more than once per reply"
    );
    let recorded = f
        .store
        .events(PROJECT, Some(11))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "chat_reply")
        .count();
    assert_eq!(recorded, 2, "each reply is journalled once");
}

#[test]
fn the_quoted_message_is_not_part_of_the_answer() {
    use forgehand::matrix::message::strip_reply_fallback;
    assert_eq!(
        strip_reply_fallback("> <@forgehand:localhost> needs a human\n> more\n\nBlue.\nThanks"),
        "Blue.\nThanks"
    );
    assert_eq!(strip_reply_fallback("> quoted only"), "");
    assert_eq!(strip_reply_fallback("Plain answer "), "Plain answer");
}

#[test]
fn a_first_notice_other_than_the_claim_still_opens_the_thread_with_it() {
    use forgehand::matrix::message::root;
    let r = root(
        &subject(8),
        &Notice::Blocked {
            reason: format!("<script> & {SECRET}"),
        },
        &Redactor::new([SECRET.to_string()]),
        Some("@alice:localhost"),
    );
    assert!(r.body.contains("proj#8") && r.body.contains("dev-proj-8"));
    assert!(
        r.body.contains("blocked: <script> & [REDACTED]"),
        "{}",
        r.body
    );
    assert!(
        r.html.contains("&lt;script&gt; &amp; [REDACTED]"),
        "{}",
        r.html
    );
    assert!(!r.html.contains("<script>"));
    assert_eq!(r.mentions, vec!["@alice:localhost".to_string()]);
}

#[test]
fn chat_replies_are_recorded_once_and_delivered_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    let store = Db::open(&path).unwrap();
    assert!(
        store
            .add_chat_reply(PROJECT, 1, "@a:x", "first", "$e1")
            .unwrap()
    );
    assert!(
        !store
            .add_chat_reply(PROJECT, 1, "@a:x", "first", "$e1")
            .unwrap()
    );
    assert!(
        store
            .add_chat_reply(PROJECT, 1, "@b:x", "second", "$e2")
            .unwrap()
    );
    assert!(
        store
            .add_chat_reply(PROJECT, 2, "@a:x", "other issue", "$e3")
            .unwrap()
    );
    let pending = store.pending_chat_replies(PROJECT, 1).unwrap();
    let bodies: Vec<&str> = pending.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["first", "second"]);
    store.mark_chat_reply_delivered(pending[0].id).unwrap();
    let pending = store.pending_chat_replies(PROJECT, 1).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event_id, "$e2");

    store.set_matrix_thread(PROJECT, 1, "$root").unwrap();
    store.set_matrix_sync_token("k", "s1").unwrap();
    store.set_matrix_sync_token("k", "s2").unwrap();
    drop(store);
    // Everything survives a reopen (a daemon restart).
    let store = Db::open(&path).unwrap();
    assert_eq!(
        store.matrix_thread(PROJECT, 1).unwrap().as_deref(),
        Some("$root")
    );
    assert_eq!(store.matrix_thread(PROJECT, 2).unwrap(), None);
    assert_eq!(
        store.matrix_thread_issue(PROJECT, "$root").unwrap(),
        Some(1)
    );
    assert_eq!(store.matrix_sync_token("k").unwrap().as_deref(), Some("s2"));
    assert_eq!(store.pending_chat_replies(PROJECT, 1).unwrap().len(), 1);
}
