//! Budgets (`[budget]`): prices, the usage file agents write, the store's
//! spend per day, the dev actor's wrap-up and block with the clock passed in,
//! and end to end an agent that keeps spending and a day budget that stops
//! picking, on the fake Forgejo with the scripted agent.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use forgehand::actors::dev::machine::{DevState, Effect, Event, Policy, Stage, next};
use forgehand::agent::usage_file;
use forgehand::budget::{BudgetConfig, Limit, ModelUsage, Prices, ProjectSpend, Spend};
use forgehand::store::{Db, TokenUsage};

use crate::harness::{Harness, PROJECT, STEP};
use crate::support::wait_until;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::seconds(secs)
}

fn policy(budget: BudgetConfig) -> Policy {
    Policy {
        budget,
        ..crate::machine::policy()
    }
}

fn working() -> DevState {
    DevState {
        stage: Stage::Working,
        started_at: Some(t0()),
        ..DevState::new(t0())
    }
}

fn spend(tokens: u64, cost_micros: u64) -> Event {
    Event::Spend {
        spent: Some(Spend {
            tokens,
            cost_micros,
        }),
    }
}

fn pastes(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Paste(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn block_reason(fx: &[Effect]) -> Option<&str> {
    fx.iter().find_map(|e| match e {
        Effect::Block { reason } => Some(reason.as_str()),
        _ => None,
    })
}

#[test]
fn an_issue_over_its_token_budget_is_told_once_then_blocked_after_the_grace() {
    let p = policy(BudgetConfig {
        issue: Limit {
            tokens: Some(1000),
            cost_micros: None,
        },
        grace: Duration::from_secs(600),
        ..BudgetConfig::default()
    });
    let (s, fx) = next(&working(), spend(999, 10), &p, at(60));
    assert!(fx.is_empty(), "under budget: {fx:?}");
    assert_eq!(s.spent.tokens, 999);

    let (s, fx) = next(&s, spend(1500, 20), &p, at(120));
    let pasted = pastes(&fx);
    assert_eq!(pasted.len(), 1, "{fx:?}");
    assert!(
        pasted[0].contains("1000 tokens") && pasted[0].contains("10m"),
        "{}",
        pasted[0]
    );
    assert_eq!(s.wrap_up_since, Some(at(120)));
    assert_eq!(s.stage, Stage::Working);

    // More spending inside the grace period: no second message.
    let (s, fx) = next(&s, spend(2500, 30), &p, at(600));
    assert!(fx.is_empty(), "{fx:?}");
    // A check with nothing new read still holds the clock.
    let (s, fx) = next(&s, Event::Spend { spent: None }, &p, at(120 + 600));
    let reason = block_reason(&fx).expect("blocked after the grace period");
    assert!(reason.contains("2500 tokens ($0.00)"), "{reason}");
    assert!(reason.contains("in 12m"), "{reason}");
    assert_eq!(s.stage, Stage::Blocked);
}

#[test]
fn cost_and_wall_clock_budgets_count_too_and_a_merge_is_let_finish() {
    let by_cost = policy(BudgetConfig {
        issue: Limit {
            tokens: None,
            cost_micros: Some(2_000_000),
        },
        ..BudgetConfig::default()
    });
    let (_, fx) = next(&working(), spend(10, 1_999_999), &by_cost, at(1));
    assert!(pastes(&fx).is_empty());
    let (_, fx) = next(&working(), spend(10, 2_000_000), &by_cost, at(1));
    assert!(pastes(&fx)[0].contains("$2.00"), "{fx:?}");

    let by_time = policy(BudgetConfig {
        issue_time: Some(Duration::from_secs(3600)),
        ..BudgetConfig::default()
    });
    let (_, fx) = next(&working(), Event::Spend { spent: None }, &by_time, at(3599));
    assert!(fx.is_empty());
    let (s, fx) = next(&working(), Event::Spend { spent: None }, &by_time, at(3600));
    assert!(pastes(&fx)[0].contains("time budget of 1h"), "{fx:?}");

    // Once merging, the work is done: no block.
    let merging = DevState {
        stage: Stage::Merging,
        ..s
    };
    let (s, fx) = next(&merging, Event::Spend { spent: None }, &by_time, at(99_999));
    assert!(fx.is_empty() && s.stage == Stage::Merging, "{fx:?}");
}

#[test]
fn prices_pick_the_longest_prefix_and_default_otherwise() {
    let prices = Prices::default();
    let usage = |input, output| TokenUsage {
        input,
        output,
        cache_creation: 0,
        cache_read: 0,
    };
    let mut by_model = ModelUsage::new();
    // Opus 4.5 has its own, lower price than older Opus models.
    by_model.insert("claude-opus-4-5-20251101".into(), usage(1_000_000, 0));
    by_model.insert("claude-opus-4-1".into(), usage(1_000_000, 0));
    by_model.insert("someone-elses-model".into(), usage(0, 1_000_000));
    let s = prices.spend(&by_model);
    assert_eq!(s.tokens, 3_000_000);
    assert_eq!(s.cost_micros, 5_000_000 + 15_000_000 + 15_000_000);
}

#[test]
fn the_usage_file_is_read_as_hostile_input() {
    let text = [
        r#"{"model": "m1", "input_tokens": 10, "output_tokens": 5}"#,
        r#"{"model": "m1", "output_tokens": 7, "cache_read_input_tokens": 3}"#,
        r#"{"input_tokens": 99999999999999, "output_tokens": -4}"#,
        r#"not json"#,
        r#"[1, 2]"#,
        "{\"model\": \"evil\\u001b[2Jname\", \"output_tokens\": 1}",
    ]
    .join("\n");
    let parsed = usage_file::parse(&text);
    assert_eq!(parsed.skipped, 2);
    assert_eq!(
        parsed.usage["m1"],
        TokenUsage {
            input: 10,
            output: 12,
            cache_creation: 0,
            cache_read: 3
        }
    );
    // Capped per line; a negative count is no count.
    assert_eq!(
        parsed.usage["unknown"].input,
        usage_file::MAX_TOKENS_PER_LINE
    );
    assert_eq!(parsed.usage["unknown"].output, 0);
    assert!(
        parsed.usage.contains_key("evil[2Jname"),
        "{:?}",
        parsed.usage.keys()
    );

    // A link in its place is not followed.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("secret");
    std::fs::write(&target, r#"{"output_tokens": 5}"#).unwrap();
    let link = dir.path().join(usage_file::USAGE_FILE);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(usage_file::read(&link).is_err());
    assert_eq!(usage_file::read(&dir.path().join("absent")).unwrap(), None);
}

#[test]
fn the_store_adds_new_spend_to_the_day_and_month_and_counts_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("forgehand.db")).unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let usage = |output| TokenUsage {
        output,
        ..TokenUsage::default()
    };
    let s = |tokens, cost_micros| Spend {
        tokens,
        cost_micros,
    };
    db.save_spend("p", 1, &usage(100), s(100, 10), day(1))
        .unwrap();
    // The totals grew: only what is new counts for the day.
    db.save_spend("p", 1, &usage(250), s(250, 25), day(2))
        .unwrap();
    // A new run (a new worktree) starts from zero again: all of it is new.
    db.save_spend("p", 1, &usage(40), s(40, 4), day(2)).unwrap();
    db.save_spend("q", 9, &usage(1000), s(1000, 100), day(2))
        .unwrap();
    db.count_run("p", day(2)).unwrap();
    db.count_run("p", day(2)).unwrap();
    assert_eq!(db.issue_spend("p", 1).unwrap(), s(40, 4));
    assert_eq!(
        db.project_spend("p", day(2)).unwrap(),
        ProjectSpend {
            today: s(190, 19),
            month: s(290, 29),
            runs_today: 2
        }
    );
    let budget = BudgetConfig {
        runs_per_day: Some(2),
        ..BudgetConfig::default()
    };
    let why = budget
        .picking_stop(&db.project_spend("p", day(2)).unwrap())
        .expect("two runs today is the most");
    assert!(why.contains("runs_per_day"), "{why}");
    assert_eq!(
        budget.picking_stop(&db.project_spend("p", day(3)).unwrap()),
        None
    );

    assert!(db.set_picking_stop("p", Some("because")).unwrap());
    assert!(
        !db.set_picking_stop("p", Some("because")).unwrap(),
        "unchanged"
    );
    assert_eq!(db.picking_stops().unwrap()[0].reason, "because");
    assert!(db.set_picking_stop("p", None).unwrap());
    assert!(db.picking_stops().unwrap().is_empty());
}

/// An agent that keeps spending and never reports: it gets one message to
/// wrap up, then the issue is blocked with a comment stating the spend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_keeps_spending_is_stopped() {
    let mut h = Harness::new("", "[budget]\nissue_tokens = 1000\ngrace = \"1ms\"\n").await;
    let n = h.forge.create_issue(
        "Spend a lot",
        "fake-agent: spend 5000\nfake-agent: hang",
        &["backlog"],
    );
    h.enable();
    h.start_daemon();
    let text = h
        .agent_received(n, "reached its budget of 1000 tokens")
        .await;
    assert!(text.contains("spent: 5000 tokens"), "{text}");
    h.forge
        .wait_until(STEP, |s| s.issue(n).has_label("blocked"))
        .await
        .expect("blocked after the grace period");
    let comments = h.bot_comments(n).join("\n---\n");
    assert!(
        comments.contains("reached its budget") && comments.contains("tokens ($0."),
        "{comments}"
    );
    let session = h.session(n);
    wait_until("the session to be killed", STEP, || async {
        (!h.has_session(&session)).then_some(())
    })
    .await;
    // The spend went into the project's day.
    let db = Db::open_read_only(&h.state.join("forgehand.db")).unwrap();
    let today = db.project_spend(PROJECT, Utc::now().date_naive()).unwrap();
    assert!(today.today.tokens >= 5000, "{today:?}");
    assert_eq!(today.runs_today, 1);
    // `status --json`: the issue's tokens and cost, the project's day and
    // the limits the daemon read.
    let status = status_json(&h);
    let issue = &status["issues"][0];
    let tokens = &issue["tokens"];
    let used: u64 = ["input", "output", "cache_creation", "cache_read"]
        .iter()
        .map(|k| tokens[k].as_u64().unwrap_or(0))
        .sum();
    assert!(used >= 5000, "{status:#}");
    assert!(issue["cost_micros"].as_u64() > Some(0), "{status:#}");
    assert_eq!(
        issue["cost"].as_f64(),
        issue["cost_micros"].as_u64().map(|m| m as f64 / 1e6)
    );
    let project = &status["projects"][0];
    assert_eq!(project["project"], PROJECT);
    assert_eq!(
        project["today"]["tokens"].as_u64(),
        Some(today.today.tokens)
    );
    assert_eq!(project["today"]["runs"], 1);
    assert_eq!(project["limits"]["issue_tokens"], 1000);
    assert_eq!(project["limits"]["day_tokens"], serde_json::Value::Null);
    assert_eq!(project["not_picking"], serde_json::Value::Null);
    h.assert_no_violations();
}

fn status_json(h: &Harness) -> serde_json::Value {
    let out = h.run(&["status", "--state", &h.state_arg(), "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("status --json")
}

/// A project over its day budget claims nothing, and `status` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_budget_stops_picking_and_status_says_why() {
    let mut h = Harness::new("", "[budget]\nday_tokens = 1000\n").await;
    {
        // Spent earlier today, by an issue long gone.
        let db = Db::open(&h.state.join("forgehand.db")).unwrap();
        let usage = TokenUsage {
            output: 1200,
            ..TokenUsage::default()
        };
        let spent = Spend {
            tokens: 1200,
            cost_micros: 18_000,
        };
        db.save_spend(PROJECT, 99, &usage, spent, Utc::now().date_naive())
            .unwrap();
    }
    let n = h.forge.create_issue("Ready", "ready", &["backlog"]);
    h.enable();
    h.start_daemon();
    let db_path = h.state.join("forgehand.db");
    let reason = wait_until(
        "the poller to record why it claims nothing",
        STEP,
        || async {
            let db = Db::open_read_only(&db_path).ok()?;
            db.picking_stops()
                .ok()?
                .into_iter()
                .next()
                .map(|s| s.reason)
        },
    )
    .await;
    assert!(reason.contains("day's budget of 1000 tokens"), "{reason}");
    assert!(!h.forge.issue(n).has_label("in-progress"));
    assert!(h.forge.issue(n).has_label("backlog"));
    let status = h.run(&["status", "--state", &h.state_arg()]);
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        out.contains(&format!("not picking in {PROJECT}: the day's budget")),
        "{out}"
    );
    // The same, with the spend and the limit, in `status --json`.
    let status = status_json(&h);
    assert_eq!(status["issues"], serde_json::json!([]), "{status:#}");
    let project = &status["projects"][0];
    assert_eq!(project["project"], PROJECT);
    assert_eq!(project["today"]["tokens"], 1200);
    assert_eq!(project["today"]["cost"], 0.018);
    assert_eq!(project["today"]["runs"], 0);
    assert_eq!(project["month"]["tokens"], 1200);
    assert_eq!(project["limits"]["day_tokens"], 1000);
    assert_eq!(project["limits"]["month_cost"], serde_json::Value::Null);
    let why = project["not_picking"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("day's budget of 1000 tokens"), "{status:#}");
    assert_eq!(status["daemon"]["month"]["tokens"], 1200);
    h.assert_no_violations();
}

/// At the daemon's monthly budget the issue is escalated once and nothing
/// more is pasted into its session.
#[test]
fn the_daemon_cap_escalates_once_and_stops_pasting() {
    let p = policy(BudgetConfig {
        daemon_month: Limit {
            tokens: Some(10_000),
            cost_micros: None,
        },
        ..BudgetConfig::default()
    });
    let month = |tokens| {
        Event::DaemonSpend(Spend {
            tokens,
            cost_micros: 0,
        })
    };
    let (s, fx) = next(&working(), month(9_999), &p, at(1));
    assert!(fx.is_empty() && !s.daemon_capped);
    let (s, fx) = next(&s, month(10_000), &p, at(2));
    assert!(s.daemon_capped);
    let escalated = fx.iter().any(|e| {
        matches!(e, Effect::Comment(t) if t.contains("the daemon's monthly budget of 10000 tokens"))
    });
    assert!(escalated, "{fx:?}");
    let (s, fx) = next(&s, month(12_000), &p, at(3));
    assert!(fx.is_empty(), "escalated once: {fx:?}");
    // What would be pasted (here: CI passed) is only journaled.
    let waiting = DevState {
        stage: Stage::AwaitingCi,
        head: Some(forgehand::forge::CommitSha("a1".into())),
        ..s
    };
    let green = Event::Ci {
        head: forgehand::forge::CommitSha("a1".into()),
        verdict: forgehand::actors::dev::machine::CiVerdict::Green,
    };
    let (s, fx) = next(&waiting, green, &p, at(4));
    assert_eq!(s.stage, Stage::AwaitingReview);
    assert!(pastes(&fx).is_empty(), "{fx:?}");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Journal(_, d) if d.starts_with("not pasted"))),
        "{fx:?}"
    );
}

#[test]
fn the_daemon_month_adds_up_every_project() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("forgehand.db")).unwrap();
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let usage = TokenUsage::default();
    let s = |tokens| Spend {
        tokens,
        cost_micros: tokens,
    };
    db.save_spend("p", 1, &usage, s(100), day(11, 3)).unwrap();
    db.save_spend("q", 2, &usage, s(50), day(11, 30)).unwrap();
    db.save_spend("q", 3, &usage, s(7), day(10, 31)).unwrap();
    assert_eq!(db.daemon_month_spend(day(11, 30)).unwrap(), s(150));
    assert_eq!(db.daemon_month_spend(day(12, 1)).unwrap(), Spend::default());
}
