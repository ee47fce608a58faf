//! What a poll costs (issue 20), counted at the fake Forgejo: on a backlog of
//! sixty issues that all wait for one open issue outside the backlog, and
//! five open PRs with red CI and no review, `run --once` asks about the
//! dependency once and looks at each PR once; the running daemon then asks
//! again only what changed, the safety net spread out.
//!
//! `scripts/bench`'s `cold_cycle` scenario builds the same world (`world`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use forgehand::forge::forgejo::ForgejoClient;
use forgehand::forge::{Forge, Issue};
use forgehand::http::retry::RetryPolicy;
use serde_json::{Value, json};

use crate::fake_forge::{CI_CONTEXT, FakeForge, ForgeState, RequestRecord};
use crate::fake_github::FakeGithub;
use crate::harness::{Harness, STEP};

/// The backlog's size and the open PRs of the world the issue measured.
pub const BACKLOG: usize = 60;
pub const PULLS: usize = 5;

/// The tests' logging, as the harness sets it.
const DEBUG: &str = "forgehand=debug,info";

/// What `world` made.
pub struct World {
    /// The open issue every backlog issue depends on.
    pub blocker: u64,
    pub backlog: Vec<u64>,
    /// The open PRs, with the head each has red CI on.
    pub pulls: Vec<(u64, String)>,
}

/// What building the world asks of a fake forge.
pub trait Fake {
    fn make_label(&self, name: &str);
    fn make_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64;
    /// A failed commit status on `sha`.
    fn fail_ci(&self, sha: &str);
    /// Where `…/repos/acme/widget/pulls` is, and the token to open PRs with.
    fn api(&self) -> (String, String);
}

/// Both fakes offer the same set-up calls; `$api` names the API's base URL.
macro_rules! fake {
    ($fake:ty, $api:ident) => {
        impl Fake for $fake {
            fn make_label(&self, name: &str) {
                self.create_label(name, "ededed");
            }
            fn make_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
                self.create_issue(title, body, labels)
            }
            fn fail_ci(&self, sha: &str) {
                self.set_status(
                    sha,
                    CI_CONTEXT,
                    "failure",
                    "tests fail",
                    "http://ci.example/1",
                );
            }
            fn api(&self) -> (String, String) {
                (self.$api(), self.token().to_string())
            }
        }
    };
}
fake!(FakeForge, api_url);
fake!(FakeGithub, url);

/// The issue's world on `h`'s fake Forgejo.
pub async fn world(h: &Harness) -> World {
    world_on(h, &h.forge).await
}

/// The issue's world on `fake`, over `h`'s repository: the labels a project
/// in use has, one open issue outside the backlog, `BACKLOG` backlog issues
/// that say `Depends on #<it>`, and `PULLS` open PRs whose CI failed and
/// which nobody reviewed.
pub async fn world_on(h: &Harness, fake: &impl Fake) -> World {
    make_labels(fake);
    let blocker = fake.make_issue("Prepare the schema", "Not ready for an agent.", &[]);
    let backlog = (0..BACKLOG)
        .map(|i| {
            let body = format!("Use the schema, part {i}.\n\nDepends on #{blocker}");
            fake.make_issue(&format!("Use the schema ({i})"), &body, &["backlog"])
        })
        .collect();
    let mut pulls = Vec::new();
    for i in 0..PULLS {
        let branch = format!("feature-{i}");
        h.git.branch(&branch, "main");
        let head = h.git.commit(
            &format!("{branch}.txt"),
            "work\n",
            &format!("work on {branch}"),
        );
        h.git.push(&branch);
        fake.fail_ci(&head);
        let pr = open_pull(fake, &branch, "main", &format!("Feature {i}"), "").await;
        pulls.push((pr, head));
    }
    World {
        blocker,
        backlog,
        pulls,
    }
}

/// The labels a project in use has.
fn make_labels(fake: &impl Fake) {
    for label in [
        "backlog",
        "priority",
        "in-progress",
        "blocked",
        "underspecified",
    ] {
        fake.make_label(label);
    }
}

/// A harness whose project polls every second.
async fn polling_every_second() -> Harness {
    let h = Harness::new("", "").await;
    h.write_project_file(&crate::harness::ProjectFile {
        poll_interval: "1s",
        ..Default::default()
    });
    h
}

/// Opens a PR through the forge's API, as a person would from the web UI.
pub async fn open_pull(fake: &impl Fake, head: &str, base: &str, title: &str, body: &str) -> u64 {
    let (api, token) = fake.api();
    let response = reqwest::Client::new()
        .post(format!("{api}/repos/acme/widget/pulls"))
        .header("Authorization", format!("token {token}"))
        .header("User-Agent", "forgehand-tests")
        .json(&json!({ "head": head, "base": base, "title": title, "body": body }))
        .send()
        .await
        .expect("opening a PR on the fake forge");
    assert_eq!(response.status().as_u16(), 201, "opening the PR {head}");
    let pr: Value = response.json().await.expect("the new PR");
    pr["number"].as_u64().expect("PR number")
}

/// `forgehand run --once` on `h` logging at `log` (`FORGEHAND_LOG`), and how
/// long it took; panics with its output if it fails.
pub fn run_once(h: &Harness, log: &str) -> Duration {
    let projects = h.projects.display().to_string();
    let state = h.state_arg();
    let mut cmd = h.command(&["run", "--once", "--projects", &projects, "--state", &state]);
    cmd.env("FORGEHAND_LOG", log);
    let started = Instant::now();
    let out = cmd.output().expect("running forgehand");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "run --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Whether `r` is the first page of the poller's issue list: where a poll starts.
pub fn starts_poll(r: &RequestRecord) -> bool {
    r.method == "GET"
        && r.template.as_deref() == Some("/repos/{owner}/{repo}/issues")
        && r.query.split('&').any(|kv| kv == "page=1")
}

/// How many polls started among the requests since the `from`th.
pub fn polls_since(s: &ForgeState, from: usize) -> usize {
    s.requests()[from..]
        .iter()
        .filter(|r| starts_poll(r))
        .count()
}

/// Waits until `n` polls started after the `from`th request; the requests since.
pub async fn after_polls(h: &Harness, from: usize, n: usize) -> Vec<RequestRecord> {
    h.forge
        .wait_until(STEP, |s| polls_since(s, from) >= n)
        .await
        .unwrap_or_else(|e| panic!("{n} polls: {e:#}"));
    h.forge.read(|s| s.requests()[from..].to_vec())
}

/// `requests` cut into poll cycles, each from one poll's first list page to
/// the next; what came before the first poll belongs to the first cycle,
/// and the last cycle, perhaps unfinished, is left out.
pub fn cycles(requests: &[RequestRecord]) -> Vec<&[RequestRecord]> {
    let starts: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| starts_poll(r))
        .map(|(i, _)| i)
        .collect();
    let mut cut = Vec::new();
    let mut from = 0;
    for &next in starts.iter().skip(1) {
        cut.push(&requests[from..next]);
        from = next;
    }
    cut
}

fn count(requests: &[RequestRecord], method: &str, path_end: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(path_end))
        .count()
}

fn shown(requests: &[RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
        .collect()
}

/// Looking at a red PR costs its status, not its reviews too.
fn assert_one_look_per_pull(requests: &[RequestRecord], world: &World, most: usize) {
    for (pr, head) in &world.pulls {
        let looks = count(requests, "GET", &format!("/commits/{head}/status"));
        assert!(
            (1..=most).contains(&looks),
            "PR #{pr}: its status asked {looks} times: {:#?}",
            shown(requests)
        );
        let reviews = count(requests, "GET", &format!("/pulls/{pr}/reviews"));
        assert_eq!(reviews, 0, "PR #{pr}: reviews asked while CI is red");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_cycle_asks_each_dependency_once() {
    let h = Harness::new("", "").await;
    let world = world(&h).await;
    h.enable();
    let from = h.forge.request_count();
    run_once(&h, DEBUG);
    let requests = h.forge.read(|s| s.requests()[from..].to_vec());
    eprintln!("run --once: {} requests", requests.len());

    let blocker = count(&requests, "GET", &format!("/issues/{}", world.blocker));
    assert_eq!(blocker, 1, "the dependency: {:#?}", shown(&requests));
    for n in &world.backlog {
        let asked = count(&requests, "GET", &format!("/issues/{n}"))
            + count(&requests, "GET", &format!("/issues/{n}/dependencies"));
        assert_eq!(asked, 0, "#{n} is in the list, waiting: nothing to ask");
    }
    assert_one_look_per_pull(&requests, &world, 1);
    // The list pages (two of issues, one of PRs), the one dependency, one
    // look per PR, and who forgehand is and which labels exist.
    assert!(
        requests.len() <= 12,
        "{} requests: {:#?}",
        requests.len(),
        shown(&requests)
    );
    assert!(h.forge.merges().is_empty());
    assert!(
        world.backlog.iter().all(|n| !h
            .forge
            .issue(*n)
            .labels
            .contains(&"in-progress".to_string())),
        "an issue waiting for an open one was claimed"
    );
    h.assert_no_violations();
}

/// An issue the open list shows needs no look-up: one backlog issue that
/// depends on another backlog issue, and an issue whose dependency closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_list_answers_for_the_issues_in_it() {
    let h = Harness::new("", "").await;
    let first = h
        .forge
        .create_issue("First step", "", &["backlog", "blocked"]);
    let second = h
        .forge
        .create_issue("Second step", &format!("Depends on #{first}"), &["backlog"]);
    let third = h
        .forge
        .create_issue("Third step", &format!("Depends on #{first}"), &["backlog"]);
    h.enable();
    let from = h.forge.request_count();
    run_once(&h, DEBUG);
    let requests = h.forge.read(|s| s.requests()[from..].to_vec());
    assert_eq!(
        count(&requests, "GET", &format!("/issues/{first}")),
        0,
        "#{first} is in the open list: {:#?}",
        shown(&requests)
    );
    for n in [second, third] {
        assert!(!h.forge.issue(n).labels.contains(&"in-progress".to_string()));
    }
    h.assert_no_violations();
}

/// The daemon on the same world: each later cycle costs the lists and what
/// the safety net looks at, never more than ten requests; the dependency is
/// asked again by the safety net, and when a dependent's entry changes, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_daemon_asks_again_only_what_changed() {
    let mut h = polling_every_second().await;
    let world = world(&h).await;
    h.enable();
    let from = h.forge.request_count();
    h.start_daemon();
    // Fourteen cycles of one second: the safety net (ten cycles) comes due once.
    let requests = after_polls(&h, from, 15).await;
    let polls = |s: &ForgeState| polls_since(s, from);
    let cut = cycles(&requests);
    assert!(cut.len() >= 14, "{} cycles", cut.len());
    let cut = &cut[..14];
    let sizes: Vec<usize> = cut.iter().map(|c| c.len()).collect();
    assert!(sizes[0] <= 12, "the first cycle: {:#?}", shown(cut[0]));
    for (i, cycle) in cut.iter().enumerate().skip(1) {
        assert!(
            cycle.len() <= 10,
            "cycle {i} of {sizes:?}: {:#?}",
            shown(cycle)
        );
    }
    let seen: Vec<RequestRecord> = cut.iter().flat_map(|c| c.iter().cloned()).collect();
    let blocker_path = format!("/issues/{}", world.blocker);
    assert_eq!(
        count(&seen, "GET", &blocker_path),
        2,
        "the dependency: once cold, once by the safety net, in {sizes:?}"
    );
    assert_one_look_per_pull(&seen, &world, 2);
    let steady: usize = sizes[1..].iter().sum();
    eprintln!(
        "requests per cycle {sizes:?}; steady state {:.2} per cycle",
        steady as f64 / (sizes.len() - 1) as f64
    );

    // One dependent's entry changes: its dependency is asked again, once.
    let edited = world.backlog[7];
    let asked_blocker = |s: &ForgeState| count(s.requests(), "GET", &blocker_path);
    let asked = h.forge.read(asked_blocker);
    let at = h.forge.read(|s| polls(s));
    h.forge.with_state(|s| {
        let issue = s.issues.get_mut(&edited).expect("the edited issue");
        issue.body.push_str("\n\nAlso mind the indexes.");
        issue.updated_at = Utc::now();
    });
    h.forge
        .wait_until(STEP, |s| polls(s) >= at + 3)
        .await
        .expect("polls after the edit");
    let now = h.forge.read(asked_blocker);
    assert_eq!(now, asked + 1, "the dependency after one dependent changed");
    assert!(h.forge.merges().is_empty());
    h.assert_no_violations();
}

/// Two PRs on one head (two branches at one commit): a scan asks for that
/// head's status once, not once per PR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_sharing_a_head_cost_one_status_look() {
    let h = Harness::new("", "").await;
    h.git.branch("feature-a", "main");
    let head = h.git.commit("a.txt", "work\n", "shared work");
    h.git.push("feature-a");
    h.git.branch("feature-b", "feature-a");
    h.git.push("feature-b");
    h.forge.fail_ci(&head);
    let a = open_pull(&h.forge, "feature-a", "main", "Feature A", "").await;
    let b = open_pull(&h.forge, "feature-b", "main", "Feature B", "").await;
    assert_eq!(h.forge.pull(a).head_sha, h.forge.pull(b).head_sha);
    h.enable();
    let from = h.forge.request_count();
    run_once(&h, DEBUG);
    let requests = h.forge.read(|s| s.requests()[from..].to_vec());
    let looks = count(&requests, "GET", &format!("/commits/{head}/status"));
    assert_eq!(
        looks,
        1,
        "the shared head's status: {:#?}",
        shown(&requests)
    );
    assert!(h.forge.merges().is_empty());
    h.assert_no_violations();
}

/// Whether `r` reads the open pull list.
fn lists_pulls(r: &RequestRecord) -> bool {
    r.method == "GET" && r.template.as_deref() == Some("/repos/{owner}/{repo}/pulls")
}

/// Without webhooks, the running daemon's idle cycle is one request: the
/// look at what changed, shared by the poller and the merge scanner; the
/// pull list is read again only as the safety net (every ten cycles) or
/// when that look names a pull request. A review is such a change: the
/// PR it approves is merged at the next poll, not at the safety net's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cycle_is_one_look_and_a_review_is_seen_at_the_next_poll() {
    let mut h = polling_every_second().await;
    make_labels(&h.forge);
    let blocker = h.forge.create_issue("Prepare the schema", "", &[]);
    for i in 0..3 {
        let body = format!("Depends on #{blocker}");
        h.forge
            .create_issue(&format!("Use the schema ({i})"), &body, &["backlog"]);
    }
    h.git.branch("feature", "main");
    let head = h.git.commit("feature.txt", "work\n", "work on a feature");
    h.git.push("feature");
    h.forge.fail_ci(&head);
    let pr = open_pull(&h.forge, "feature", "main", "Feature", "").await;
    h.enable();
    let from = h.forge.request_count();
    h.start_daemon();
    // Past the cold cycle and the change-slack of the world just made.
    let requests = after_polls(&h, from, 19).await;
    let polls = |s: &ForgeState| polls_since(s, from);
    let warm = &cycles(&requests)[8..18];
    let sizes: Vec<usize> = warm.iter().map(|c| c.len()).collect();
    let pull_lists: usize = warm
        .iter()
        .map(|c| c.iter().filter(|r| lists_pulls(r)).count())
        .sum();
    assert!(
        pull_lists <= 2,
        "the pull list {pull_lists} times in ten idle cycles {sizes:?}"
    );
    let ones = sizes.iter().filter(|n| **n == 1).count();
    assert!(ones >= 6, "idle cycles of one request: {sizes:?}");
    assert!(
        sizes.iter().sum::<usize>() <= 20,
        "ten idle cycles {sizes:?}: {:#?}",
        warm.iter().map(|c| shown(c)).collect::<Vec<_>>()
    );

    // Green now (a status stamps nothing), then approved (a review does).
    h.forge.set_status(
        &head,
        CI_CONTEXT,
        "success",
        "tests pass",
        "http://ci.example/1",
    );
    let (at, approved) = h.forge.read(|s| (polls(s), s.requests().len()));
    h.forge.submit_review(
        pr,
        crate::fake_forge::REVIEWER,
        "APPROVED",
        "good",
        None,
        &[],
    );
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("merged once approved");
    let (merged_at, after) = h
        .forge
        .read(|s| (polls(s), s.requests()[approved..].to_vec()));
    assert!(
        merged_at <= at + 2,
        "approved at poll {at}, merged at poll {merged_at}: {:#?}",
        shown(&after)
    );
    h.assert_no_violations();
}

/// The Forgejo client reads the backlog whole once, then only what changed
/// since (`since`): one request however big the backlog, and every kind of
/// change seen; every tenth look reads it whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_backlog_is_read_whole_then_by_what_changed() {
    let h = Harness::new("", "").await;
    let backlog: Vec<u64> = (0..BACKLOG)
        .map(|i| h.forge.create_issue(&format!("Task {i}"), "", &["backlog"]))
        .collect();
    let other = h.forge.create_issue("Not for agents yet", "", &[]);
    // Stamped over the last hour, as a backlog in use is: what changed
    // lately is a few issues, not all of them.
    let hour_ago = Utc::now() - TimeDelta::hours(1);
    h.forge.with_state(|s| {
        for (i, n) in backlog.iter().chain([&other]).enumerate() {
            let issue = s.issues.get_mut(n).expect("an issue just made");
            issue.updated_at = hour_ago + TimeDelta::seconds(10 * i as i64);
        }
    });
    let client = ForgejoClient::new(
        h.forge.url(),
        "acme/widget",
        h.forge.token().to_string(),
        RetryPolicy::default(),
    )
    .expect("a client for the fake forge");
    let truth = || {
        h.forge.read(|s| {
            s.issues()
                .filter(|i| !i.is_pull && i.is_open() && i.has_label("backlog"))
                .map(|i| i.number)
                .collect::<BTreeSet<u64>>()
        })
    };
    let numbers = |issues: &[Issue]| issues.iter().map(|i| i.number.0).collect::<BTreeSet<u64>>();
    let look = async || {
        let before = h.forge.request_count();
        let issues = client
            .list_open_issues("backlog")
            .await
            .expect("the backlog");
        let requests = h.forge.read(|s| s.requests()[before..].to_vec());
        (issues, requests)
    };

    let (first, requests) = look().await;
    assert_eq!(numbers(&first), truth());
    assert_eq!(requests.len(), 2, "two pages: {:#?}", shown(&requests));

    let (again, requests) = look().await;
    assert_eq!(again, first, "nothing changed");
    assert_eq!(requests.len(), 1, "what changed: {:#?}", shown(&requests));
    assert!(
        requests[0].query.contains("since="),
        "{:#?}",
        shown(&requests)
    );

    h.forge.remove_label(backlog[3], "backlog");
    h.forge.close_issue(backlog[4]);
    h.forge.add_label(other, "backlog");
    let fresh = h.forge.create_issue("A new task", "", &["backlog"]);
    h.forge.with_state(|s| {
        let issue = s.issues.get_mut(&backlog[5]).expect("an issue");
        issue.body = format!("Depends on #{other}");
        issue.updated_at = Utc::now();
    });
    let (changed, requests) = look().await;
    assert_eq!(requests.len(), 1, "what changed: {:#?}", shown(&requests));
    assert_eq!(numbers(&changed), truth());
    for n in [other, fresh] {
        assert!(numbers(&changed).contains(&n), "#{n} joined the backlog");
    }
    let edited = changed.iter().find(|i| i.number.0 == backlog[5]);
    assert_eq!(
        edited.map(|i| i.body.as_str()),
        Some(format!("Depends on #{other}").as_str())
    );

    let mut whole = 0;
    for _ in 0..10 {
        let (issues, requests) = look().await;
        assert_eq!(numbers(&issues), truth());
        whole += requests
            .iter()
            .filter(|r| !r.query.contains("since="))
            .count();
    }
    assert_eq!(whole, 2, "one whole reading (two pages) in ten looks");
    h.assert_no_violations();
}

/// The same cold cycle on GitHub: the dependency asked about once, each PR
/// looked at once (its commit statuses and its check runs), no reviews.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_cycle_on_github_asks_each_dependency_once() {
    let (h, github) = crate::github_e2e::github(crate::github_e2e::SignIn::Token).await;
    let world = world_on(&h, &github).await;
    h.enable();
    let from = github.request_count();
    run_once(&h, DEBUG);
    let requests = github.requests()[from..].to_vec();
    eprintln!("run --once on GitHub: {} requests", requests.len());

    let blocker = count(&requests, "GET", &format!("/issues/{}", world.blocker));
    assert_eq!(blocker, 1, "the dependency: {:#?}", shown(&requests));
    for n in &world.backlog {
        let asked = count(&requests, "GET", &format!("/issues/{n}"));
        assert_eq!(asked, 0, "#{n} is in the list, waiting: nothing to ask");
    }
    assert_one_look_per_pull(&requests, &world, 1);
    for (pr, head) in &world.pulls {
        let checks = count(&requests, "GET", &format!("/commits/{head}/check-runs"));
        assert!(checks <= 1, "PR #{pr}: its check runs asked {checks} times");
    }
    // The list pages (one of issues, one of PRs), the one dependency, one
    // look per PR (statuses and check runs), who forgehand is and the labels.
    assert!(
        requests.len() <= 5 + 2 * PULLS,
        "{} requests: {:#?}",
        requests.len(),
        shown(&requests)
    );
    assert!(github.merges().is_empty());
}

/// GitHub is followed through what changed too: once warm, the running
/// daemon asks GitHub's issue list for the changes since (`since=`), reads
/// the whole backlog only every tenth look and the pull list only as the
/// safety net, where it used to read both lists every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_daemon_follows_github_through_what_changed() {
    let (mut h, github) = crate::github_e2e::github(crate::github_e2e::SignIn::Token).await;
    world_on(&h, &github).await;
    h.enable();
    let from = github.request_count();
    h.start_daemon();
    let issue_list =
        |r: &RequestRecord| r.method == "GET" && r.path.ends_with("/repos/acme/widget/issues");
    let requests = crate::support::wait_until("forty looks at the issues", STEP, || async {
        let requests = github.requests()[from..].to_vec();
        (requests.iter().filter(|r| issue_list(r)).count() >= 40).then_some(requests)
    })
    .await;
    // The last twenty looks, and what else was asked meanwhile.
    let twentieth_last = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| issue_list(r))
        .map(|(i, _)| i)
        .nth(20)
        .expect("forty looks");
    let warm = &requests[twentieth_last..];
    let looks: Vec<&RequestRecord> = warm.iter().filter(|r| issue_list(r)).collect();
    let whole = looks.iter().filter(|r| !r.query.contains("since=")).count();
    assert!(
        whole <= 3,
        "the whole list {whole} times in {} looks: {:#?}",
        looks.len(),
        shown(warm)
    );
    let pull_lists = warm
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/repos/acme/widget/pulls"))
        .count();
    assert!(
        pull_lists <= 3,
        "the pull list {pull_lists} times: {:#?}",
        shown(warm)
    );
    assert!(github.merges().is_empty());
    github.assert_no_violations();
}
