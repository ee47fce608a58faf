//! The durable chat outbox: what forgehand owes the room survives a
//! homeserver outage and a daemon restart (real Synapse, real daemon), a
//! crash between the send and the delete posts nothing twice (Synapse
//! de-duplicates the row's transaction id), and a message too old is dropped
//! with a journal line, never silently. And the escalation's question on the
//! forge, which a restart during a forge outage used to lose.

use std::sync::Arc;
use std::time::Duration;

use forgehand::config::MatrixConfig;
use forgehand::matrix::message;
use forgehand::matrix::{MatrixArgs, MatrixNotifier, MatrixTiming, OnReply, Outgoing};
use forgehand::notify::{Notice, Notifier, Subject};
use forgehand::redact::Redactor;
use forgehand::store::{Db, Store};
use serde_json::Value;

use crate::fake_forge::{Behaviour, CiBehaviour, Fault, FaultRule, ReviewBehaviour};
use crate::harness::Harness;
use crate::support::wait_until;
use crate::synapse::{Synapse, enc};

const PROJECT: &str = "proj";
const WAIT: Duration = Duration::from_secs(60);

fn body(e: &Value) -> &str {
    e["content"]["body"].as_str().unwrap_or_default()
}

fn thread_of(e: &Value) -> Option<&str> {
    let rel = &e["content"]["m.relates_to"];
    (rel["rel_type"] == "m.thread")
        .then(|| rel["event_id"].as_str())
        .flatten()
}

fn messages(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .cloned()
        .collect()
}

fn subject(issue: u64) -> Subject {
    Subject {
        project: PROJECT.into(),
        issue,
        title: format!("Paint widget {issue}"),
        session: format!("dev-{PROJECT}-{issue}"),
        issue_url: format!("http://forge.example/acme/widget/issues/{issue}"),
    }
}

fn config(homeserver: &str, room_id: &str, user_id: &str, max_age: Duration) -> MatrixConfig {
    MatrixConfig {
        homeserver: homeserver.into(),
        room_id: room_id.into(),
        user_id: user_id.into(),
        token_env: "MATRIX_TOKEN".into(),
        mention_user: None,
        outbox_max_age: max_age,
    }
}

fn notifier(store: Arc<Store>, config: MatrixConfig, token: &str) -> MatrixNotifier {
    let on_reply: OnReply = Arc::new(|_: &str, _: u64| {});
    MatrixNotifier::start(MatrixArgs {
        project: PROJECT.into(),
        config,
        token: token.into(),
        store,
        redactor: Redactor::new([token.to_string()]),
        on_reply,
        timing: MatrixTiming {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(500),
            sync_timeout: Duration::from_secs(2),
        },
    })
    .expect("starting the notifier")
}

/// Wait until forgehand's comment on issue `n` asks `question`.
async fn asked_on_the_forge(h: &Harness, n: u64, question: &str) {
    wait_until("the question on the issue", WAIT, || async {
        h.bot_comments(n)
            .iter()
            .any(|c| c.contains(question))
            .then_some(())
    })
    .await;
}

/// The daemon's `status` output.
fn status(h: &Harness) -> String {
    let out = h.run(&["status", "--state", &h.state_arg()]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The homeserver is down from before forgehand starts: the claim and the
/// escalation wait in the outbox (`status` says how many and since when),
/// forgehand is stopped with SIGTERM and started again, and only then does
/// the homeserver come back. Both arrive, in order, in one thread, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_owed_during_an_outage_survives_a_restart() {
    let mut synapse = Synapse::start().await;
    let mut h = synapse.harness().await;
    h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    let reason = "should the widget be blue or green?";
    let n = h.forge.create_issue(
        "Paint the widget",
        &format!("fake-agent: escalate {reason}"),
        &["backlog"],
    );
    synapse.stop();
    h.enable();
    h.start_daemon();

    // The escalation reached the forge; the chat still waits for both.
    asked_on_the_forge(&h, n, reason).await;
    let waiting = wait_until("two messages in the outbox", WAIT, || async {
        let s = status(&h);
        s.contains("chat outbox of proj: 2 messages waiting since")
            .then_some(s)
    })
    .await;
    assert!(waiting.contains(" ago)"), "{waiting}");
    wait_until("the outage in the journal", WAIT, || async {
        let db = Db::open_read_only(&h.state.join("forgehand.db")).ok()?;
        let events = db.events(PROJECT, None).ok()?;
        events
            .iter()
            .any(|e| e.detail.starts_with("homeserver unreachable since"))
            .then_some(())
    })
    .await;

    let (code, _) = h.stop_daemon();
    assert_eq!(code, Some(0), "{}", h.daemon_log());
    h.start_daemon();
    synapse.resume().await;

    synapse
        .wait_events("the escalation in the thread", WAIT, |evs| {
            evs.iter().any(|e| body(e).contains(reason))
        })
        .await;
    wait_until("the outbox to empty", WAIT, || async {
        (!status(&h).contains("chat outbox of")).then_some(())
    })
    .await;
    let events = messages(&synapse.events(&synapse.alice).await);
    let escalations = events.iter().filter(|e| body(e).contains(reason)).count();
    assert_eq!(escalations, 1, "{events:#?}");
    assert_eq!(
        events.len(),
        2,
        "the claim, then the escalation: {events:#?}"
    );
    let root = events[0]["event_id"].as_str().unwrap();
    assert!(body(&events[0]).contains("Paint the widget"), "{events:#?}");
    assert_eq!(thread_of(&events[0]), None);
    assert!(body(&events[1]).contains(reason));
    assert_eq!(thread_of(&events[1]), Some(root));
    assert!(
        events[1]["content"]["m.mentions"]["user_ids"]
            .to_string()
            .contains(&synapse.alice.user_id)
    );
    let journal = Db::open_read_only(&h.state.join("forgehand.db"))
        .unwrap()
        .events(PROJECT, None)
        .unwrap();
    assert!(
        journal
            .iter()
            .any(|e| e.detail.starts_with("homeserver reachable again after")),
        "{journal:#?}"
    );
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(&synapse.bot.token));
}

/// A crash after Synapse accepted a message but before its outbox row was
/// deleted: the row is sent again on start under the same transaction id
/// (same access token, same device), Synapse answers with the event it
/// already has, and the room holds the message once; the thread is that event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_send_and_delete_posts_nothing_twice() {
    let synapse = Synapse::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    let notice = Notice::Claimed;
    let row = {
        let db = Db::open(&path).unwrap();
        let item = Outgoing::Notice {
            subject: subject(4),
            notice: notice.clone(),
        };
        db.outbox_push(PROJECT, 4, &item.to_payload()).unwrap();
        db.outbox_next(PROJECT).unwrap().expect("the row")
    };
    // What the sender did before the "crash": the same content, the row's
    // transaction id, the bot's token.
    let rendered = message::root(&subject(4), &notice, &Redactor::new([]), None);
    let content = message::content(&rendered, false, None);
    let txn = forgehand::matrix::transaction_id(&row);
    let sent = synapse
        .call(
            &synapse.bot,
            reqwest::Method::PUT,
            &format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                enc(&synapse.room_id),
                enc(&txn)
            ),
            content,
        )
        .await;
    let first = sent["event_id"].as_str().unwrap().to_string();

    let store = Arc::new(Store::open(&path).unwrap());
    let n = notifier(
        store.clone(),
        config(
            &synapse.url,
            &synapse.room_id,
            &synapse.bot.user_id,
            MatrixConfig::DEFAULT_OUTBOX_MAX_AGE,
        ),
        &synapse.bot.token,
    );
    assert!(n.flush(WAIT).await, "the row was not resent");
    assert_eq!(
        store.matrix_thread(PROJECT, 4).await.unwrap().as_deref(),
        Some(first.as_str()),
        "the resend got the event Synapse already had"
    );
    n.notify(&subject(4), Notice::ReviewOverdue);
    assert!(n.flush(WAIT).await);
    let msgs = messages(&synapse.events(&synapse.alice).await);
    let roots = msgs
        .iter()
        .filter(|m| body(m).contains("Paint widget 4"))
        .count();
    assert_eq!(roots, 1, "{msgs:#?}");
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert_eq!(thread_of(&msgs[1]), Some(first.as_str()));
}

/// A message the homeserver has not taken within `outbox_max_age` is
/// dropped with a journal line naming it; younger ones keep waiting, and the
/// outage is journaled once however often the sender tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_older_than_the_max_age_is_dropped_with_a_journal_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    {
        let db = Db::open(&path).unwrap();
        let old = Outgoing::Notice {
            subject: subject(6),
            notice: Notice::Blocked {
                reason: "the yesterday message".into(),
            },
        };
        db.outbox_push(PROJECT, 6, &old.to_payload()).unwrap();
    }
    // Written two hours ago, under a one-hour limit.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let then = (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc3339();
    conn.execute("UPDATE chat_outbox SET created_at = ?1", [then])
        .unwrap();
    drop(conn);

    // Nothing listens on this port: the homeserver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(Store::open(&path).unwrap());
    let n = notifier(
        store.clone(),
        config(
            &format!("http://127.0.0.1:{port}"),
            "!room:localhost",
            "@forgehand:localhost",
            Duration::from_secs(3600),
        ),
        "syt_secret_token_value",
    );
    assert!(n.flush(WAIT).await, "the old message was not dropped");
    let journal = store.events(PROJECT, Some(6)).await.unwrap();
    let dropped: Vec<_> = journal
        .iter()
        .filter(|e| e.detail.starts_with("chat message dropped"))
        .collect();
    assert_eq!(dropped.len(), 1, "{journal:#?}");
    assert!(
        dropped[0].detail.contains("the yesterday message")
            && dropped[0].detail.contains("outbox_max_age (1h)"),
        "{dropped:#?}"
    );

    n.notify(
        &subject(6),
        Notice::Escalation {
            reason: "still owed".into(),
        },
    );
    assert!(
        !n.flush(Duration::from_secs(2)).await,
        "a young message waits for the homeserver"
    );
    let summary = store.outbox_summary().await.unwrap();
    assert_eq!(summary.len(), 1, "{summary:#?}");
    assert_eq!(summary[0].waiting, 1);
    let outage = wait_until("the outage in the journal", WAIT, || async {
        let all = store.events(PROJECT, None).await.ok()?;
        let lines: Vec<_> = all
            .into_iter()
            .filter(|e| e.detail.starts_with("homeserver unreachable since"))
            .collect();
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(outage.len(), 1, "{outage:#?}");
    assert!(outage[0].issue.is_none());
    assert!(!outage[0].detail.contains("syt_secret_token_value"));
}

/// `[matrix] outbox_max_age`: 24 hours unless given; a zero age is an error
/// naming the file, line and field.
#[test]
fn the_outbox_max_age_defaults_to_a_day_and_must_be_positive() {
    let dir = tempfile::tempdir().unwrap();
    let file = |age: &str| {
        format!(
            "name = \"proj\"\nrepo = \"o/p\"\n[forge]\nkind = \"forgejo\"\nurl = \"https://f.example\"\n\
             token_env = \"FORGE_TOKEN\"\n[agent]\ncommand = \"claude\"\n[matrix]\n\
             homeserver = \"https://m.example\"\nroom_id = \"!r:m\"\nuser_id = \"@b:m\"\n\
             token_env = \"MATRIX_TOKEN\"\n{age}"
        )
    };
    let env = |name: &str| (name == "FORGE_TOKEN" || name == "MATRIX_TOKEN").then(|| "x".into());
    let path = dir.path().join("proj.toml");
    std::fs::write(&path, file("")).unwrap();
    let p = forgehand::config::load_file_with(&path, &env).expect("valid");
    assert_eq!(
        p.matrix.unwrap().outbox_max_age,
        Duration::from_secs(24 * 3600)
    );
    std::fs::write(&path, file("outbox_max_age = \"90m\"\n")).unwrap();
    let p = forgehand::config::load_file_with(&path, &env).expect("valid");
    assert_eq!(
        p.matrix.unwrap().outbox_max_age,
        Duration::from_secs(90 * 60)
    );
    std::fs::write(&path, file("outbox_max_age = \"0s\"\n")).unwrap();
    let errors = forgehand::config::load_file_with(&path, &env).expect_err("zero is refused");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let want = format!(
        "{}:14:18: [matrix] outbox_max_age: invalid duration \"0s\": it must be greater than zero",
        path.display()
    );
    assert!(shown.iter().any(|e| e.starts_with(&want)), "{shown:#?}");
}

/// The same for the forge: the escalation's comment meets a forge outage
/// (every comment forgehand posts gets a 503), forgehand is stopped with
/// SIGTERM while it waits to try again, and the forge is back by the next
/// start. The question is posted then, once, however often forgehand starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_comment_lost_to_an_outage_and_a_restart_is_posted_once() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    h.env.push((
        "FORGEHAND_TIMINGS".into(),
        "outage_first=200ms,outage_max=1s".into(),
    ));
    h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    h.forge.inject_fault(FaultRule {
        method: Some("POST".into()),
        path_contains: Some("/comments".into()),
        fault: Fault::Status {
            status: 503,
            retry_after: None,
        },
        times: u32::MAX,
    });
    let reason = "tabs or spaces?";
    let n = h.forge.create_issue(
        "Indent the code",
        &format!("fake-agent: escalate {reason}"),
        &["backlog"],
    );
    h.enable();
    h.start_daemon();
    wait_until("the escalation to meet the outage", WAIT, || async {
        let db = Db::open_read_only(&h.state.join("forgehand.db")).ok()?;
        let journal: Vec<_> = db
            .events(PROJECT, Some(n))
            .ok()?
            .into_iter()
            .map(|e| (e.kind, e.detail))
            .collect();
        let asked = journal
            .iter()
            .any(|(k, d)| k == "phase_seen" && d.contains(reason));
        let down = journal
            .iter()
            .any(|(_, d)| d.contains("forge unreachable since"));
        (asked && down).then_some(())
    })
    .await;
    let (code, _) = h.stop_daemon();
    assert_eq!(code, Some(0), "{}", h.daemon_log());
    assert!(h.bot_comments(n).iter().all(|c| !c.contains(reason)));
    h.forge.with_state(|s| s.faults.rules.clear());

    h.start_daemon();
    asked_on_the_forge(&h, n, reason).await;
    // Once more: this start finds the question there already.
    let (code, _) = h.stop_daemon();
    assert_eq!(code, Some(0), "{}", h.daemon_log());
    h.start_daemon();
    h.forge.add_comment(n, "alice", "Spaces, please.");
    h.agent_received(n, "Spaces, please.").await;
    let asked = h
        .bot_comments(n)
        .iter()
        .filter(|c| c.contains(reason))
        .count();
    assert_eq!(asked, 1, "{:#?}", h.bot_comments(n));
    h.assert_no_violations();
}

/// Messages left in the outbox by a project whose `[matrix]` section is gone
/// can never be sent: the daemon drops them when it starts, with a journal
/// line, and `status` stops listing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_of_a_project_without_matrix_is_dropped_at_start() {
    let mut h = Harness::new("", "").await;
    std::fs::create_dir_all(&h.state).unwrap();
    {
        let db = Db::open(&h.state.join("forgehand.db")).unwrap();
        for issue in [3, 4] {
            let item = Outgoing::Notice {
                subject: subject(issue),
                notice: Notice::Claimed,
            };
            db.outbox_push(PROJECT, issue, &item.to_payload()).unwrap();
        }
    }
    assert!(
        status(&h).contains("chat outbox of proj: 2 messages"),
        "{}",
        status(&h)
    );
    h.start_daemon();
    wait_until("the outbox dropped", WAIT, || async {
        (!status(&h).contains("chat outbox of")).then_some(())
    })
    .await;
    let journal = Db::open_read_only(&h.state.join("forgehand.db"))
        .unwrap()
        .events(PROJECT, None)
        .unwrap();
    assert!(
        journal.iter().any(|e| e
            .detail
            .starts_with("dropped 2 chat messages waiting in the outbox")
            && e.detail.contains("no [matrix] section")),
        "{journal:#?}"
    );
}
