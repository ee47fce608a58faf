//! End to end with a real Synapse: an agent escalates, the question lands in
//! the issue's Matrix thread mentioning the human, her reply in the thread
//! reaches the agent in tmux, and the merge is reported in the same thread.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_forge::{Behaviour, Chaos, CiBehaviour, Fault, ReviewBehaviour};
use crate::harness::STEP;
use crate::support::wait_until;
use crate::synapse::Synapse;

const ROOM_WAIT: Duration = Duration::from_secs(60);

fn body(e: &Value) -> &str {
    e["content"]["body"].as_str().unwrap_or_default()
}

fn thread_of(e: &Value) -> Option<&str> {
    let rel = &e["content"]["m.relates_to"];
    (rel["rel_type"] == "m.thread")
        .then(|| rel["event_id"].as_str())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_and_answer_through_a_matrix_thread() {
    let synapse = Synapse::start().await;
    let mut h = synapse.harness().await;
    h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    let reason = "which language should the greeting use?";
    let n = h.forge.create_issue(
        "Greet in one language",
        &format!("fake-agent: escalate {reason}"),
        &["backlog"],
    );
    h.enable();
    h.start_daemon();

    let alice = synapse.alice.user_id.clone();
    let events = synapse
        .wait_events("the escalation in a thread", ROOM_WAIT, |evs| {
            evs.iter()
                .any(|e| body(e).contains(reason) && thread_of(e).is_some())
        })
        .await;
    let question = events.iter().find(|e| body(e).contains(reason)).unwrap();
    let mentions = question["content"]["m.mentions"]["user_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(mentions.iter().any(|u| u == &json!(alice)), "{question:#}");
    let html = question["content"]["formatted_body"]
        .as_str()
        .unwrap_or_default();
    assert!(
        html.contains(&format!("https://matrix.to/#/{alice}")),
        "{html}"
    );
    let root = thread_of(question).unwrap().to_string();
    let root_event = events
        .iter()
        .find(|e| e["event_id"] == json!(root))
        .expect("the thread root");
    assert!(
        body(root_event).contains("Greet in one language"),
        "{root_event:#}"
    );
    assert!(body(root_event).contains(&h.session(n)), "{root_event:#}");

    let reply = synapse
        .send_as_alice(json!({
            "msgtype": "m.text",
            "body": "Use Esperanto.",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": true,
                             "m.in_reply_to": {"event_id": root}},
        }))
        .await;
    let text = h.agent_received(n, "Use Esperanto.").await;
    assert!(text.contains(&alice), "{text}");

    h.forge
        .wait_until(STEP, |s| !s.issue(n).is_open())
        .await
        .expect("merged after the answer");
    let events = synapse
        .wait_events(
            "the merge in the same thread, and the ✅",
            ROOM_WAIT,
            |evs| {
                let merged = evs
                    .iter()
                    .any(|e| thread_of(e) == Some(root.as_str()) && body(e).contains("merged"));
                let ack = evs.iter().any(|e| {
                    e["type"] == "m.reaction"
                        && e["content"]["m.relates_to"]["event_id"] == json!(reply)
                        && e["content"]["m.relates_to"]["key"] == "✅"
                });
                merged && ack
            },
        )
        .await;
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains(&synapse.bot.token),
        "the bot's token never reaches the room"
    );
    assert!(h.journal(n).iter().any(|(k, _)| k == "chat_reply"));
    h.assert_no_violations();
}

/// Replies in the thread while the forge is down wait behind the look the
/// outage interrupted, and each reaches the agent once: a second reply
/// arriving meanwhile does not queue the first one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_replies_during_a_forge_outage_are_pasted_once() {
    let synapse = Synapse::start().await;
    let mut h = synapse.harness().await;
    h.env.push((
        "FORGEHAND_TIMINGS".into(),
        "outage_first=200ms,outage_max=1s".into(),
    ));
    let reason = "which colour should the button be?";
    let n = h.forge.create_issue(
        "Colour the button",
        &format!("fake-agent: escalate {reason}"),
        &["backlog"],
    );
    h.enable();
    h.start_daemon();
    let events = synapse
        .wait_events("the escalation in a thread", ROOM_WAIT, |evs| {
            evs.iter()
                .any(|e| body(e).contains(reason) && thread_of(e).is_some())
        })
        .await;
    let question = events.iter().find(|e| body(e).contains(reason)).unwrap();
    let root = thread_of(question).unwrap().to_string();

    // The dev actor's look for an answer on the forge meets the outage.
    h.forge.set_chaos(Chaos {
        rate: 1.0,
        seed: 1,
        faults: vec![Fault::Status {
            status: 503,
            retry_after: None,
        }],
    });
    wait_until("the issue to meet the outage", STEP, || async {
        h.journal(n)
            .iter()
            .any(|(_, d)| d.contains("forge unreachable since"))
            .then_some(())
    })
    .await;
    let in_thread = |text: &str| {
        json!({
            "msgtype": "m.text",
            "body": text,
            "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": true,
                             "m.in_reply_to": {"event_id": root}},
        })
    };
    synapse.send_as_alice(in_thread("Make it teal.")).await;
    wait_until("the first reply recorded", STEP, || async {
        h.journal(n)
            .iter()
            .any(|(k, d)| k == "chat_reply" && d.contains("in the Matrix thread"))
            .then_some(())
    })
    .await;
    synapse
        .send_as_alice(in_thread("And round the corners."))
        .await;
    wait_until("both replies recorded", STEP, || async {
        (h.journal(n)
            .iter()
            .filter(|(k, d)| k == "chat_reply" && d.contains("in the Matrix thread"))
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    h.forge.clear_chaos();

    let transcript = h.agent_received(n, "round the corners").await;
    assert_eq!(
        transcript.matches("Make it teal.").count(),
        1,
        "the first reply pasted once:\n{transcript}"
    );
    assert_eq!(
        transcript.matches("round the corners").count(),
        1,
        "{transcript}"
    );
    h.assert_no_violations();
}
