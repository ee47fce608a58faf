//! The Forgejo client against the fake forge with injected faults (5xx, HTML pages,
//! timeouts, resets, 429 with `Retry-After`, and answers lost after the request
//! landed): every call survives, and none lands twice: one comment, one label, one
//! pull request, one merge. Ends with a seeded chaos run over mixed calls.

use std::time::Duration;

use forgehand::forge::forgejo::ForgejoClient;
use forgehand::forge::{
    CommitSha, Forge, ForgeError, IssueNumber, MergeMethod, MergeRequest, NewPull, PrNumber,
};
use forgehand::http::retry::RetryPolicy;

use crate::fake_forge::fixture::GitFixture;
use crate::fake_forge::{Chaos, FakeForge, FakeForgeOptions, Fault, FaultRule};

/// Longer than [`fast`]'s request timeout: the client gives up waiting.
const PAST_TIMEOUT: Duration = Duration::from_millis(800);

/// Short waits, so that a test with a dozen faults stays quick.
fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        request_timeout: Duration::from_millis(500),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A fake forge over a real bare repository, and a client for it.
struct Setup {
    forge: FakeForge,
    client: ForgejoClient,
    fixture: GitFixture,
}

async fn setup(policy: RetryPolicy) -> Setup {
    let fixture = GitFixture::new();
    let forge = FakeForge::start(FakeForgeOptions {
        bare_repo: fixture.bare.clone(),
        ..Default::default()
    })
    .await;
    let client = ForgejoClient::new(forge.url(), "acme/widget", forge.token().to_owned(), policy)
        .expect("client for the fake forge");
    Setup {
        forge,
        client,
        fixture,
    }
}

impl Setup {
    /// Pushes branch `name` with one commit of its own file, off `main`.
    fn push_branch(&self, name: &str) {
        self.fixture.branch(name, "main");
        let file = format!("{}.txt", name.replace('/', "-"));
        self.fixture.commit(&file, name, name);
        self.fixture.push(name);
    }

    fn assert_no_violations(&self) {
        let violations = self.forge.violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }

    /// How many requests with this method had a path ending with `suffix`.
    fn count(&self, method: &str, suffix: &str) -> usize {
        self.forge
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }
}

fn new_pull(head: &str) -> NewPull {
    NewPull {
        head: head.to_owned(),
        base: "main".to_owned(),
        title: format!("fix: {head}"),
        body: "Fixes #1".to_owned(),
        draft: false,
    }
}

fn merge_of(sha: &CommitSha) -> MergeRequest {
    MergeRequest {
        method: MergeMethod::Squash,
        head_sha: sha.clone(),
        delete_branch: false,
    }
}

/// Every kind of fault that leaves nothing applied.
fn plain_faults() -> Vec<Fault> {
    vec![
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        Fault::Status {
            status: 502,
            retry_after: None,
        },
        Fault::Status {
            status: 503,
            retry_after: None,
        },
        Fault::Html { status: 502 },
        Fault::Html { status: 200 },
        Fault::Reset,
    ]
}

/// Answers lost after the request landed: an error status, an HTML page where JSON
/// was due, a reset connection, an answer later than the client waits.
fn lost_answers() -> Vec<Fault> {
    vec![
        Fault::Status {
            status: 502,
            retry_after: None,
        }
        .after_apply(),
        Fault::Status {
            status: 500,
            retry_after: None,
        }
        .after_apply(),
        Fault::Html { status: 200 }.after_apply(),
        Fault::Reset.after_apply(),
        Fault::Delay(PAST_TIMEOUT).after_apply(),
    ]
}

#[tokio::test]
async fn every_fault_kind_on_a_get_is_survived() {
    let s = setup(fast()).await;
    let n = s.forge.create_issue("Flaky", "body", &["backlog"]);
    let mut faults = plain_faults();
    faults.push(Fault::Delay(PAST_TIMEOUT));
    faults.push(
        Fault::Status {
            status: 500,
            retry_after: None,
        }
        .after_apply(),
    );
    for (i, fault) in faults.iter().enumerate() {
        s.forge
            .inject_fault(FaultRule::on("GET", &format!("/issues/{n}"), fault.clone()));
        let issue = s
            .client
            .get_issue(IssueNumber(n))
            .await
            .unwrap_or_else(|e| panic!("GET under {fault:?}: {e}"));
        assert_eq!(issue.title, "Flaky");
        assert_eq!(
            s.forge.faults_injected(),
            i as u64 + 1,
            "{fault:?} was used"
        );
    }
    // A listing is a GET too, page by page.
    s.forge
        .inject_fault(FaultRule::on("GET", "/issues", Fault::Reset));
    let open = s.client.list_open_issues("backlog").await.unwrap();
    assert_eq!(open.len(), 1);
    s.assert_no_violations();
}

#[tokio::test]
async fn a_reset_reaches_the_client_as_a_connection_error() {
    let s = setup(RetryPolicy {
        max_attempts: 1,
        ..fast()
    })
    .await;
    s.forge
        .inject_fault(FaultRule::on("GET", "/user", Fault::Reset));
    let err = s.client.current_user().await.unwrap_err().to_string();
    assert!(err.contains("GET /api/v1/user"), "{err}");
    assert!(!err.contains("HTTP"), "no HTTP answer, no status: {err}");
    let record = &s.forge.requests()[0];
    assert_eq!(
        (record.status, record.fault.clone()),
        (0, Some(Fault::Reset))
    );
}

#[tokio::test]
async fn a_comment_whose_answer_was_lost_exists_once() {
    let s = setup(fast()).await;
    let n = s.forge.create_issue("Talk", "body", &[]);
    // A human's identical comment and an older one of ours do not count as the retry's.
    s.forge.add_comment(n, "alice", "same words");
    for (i, fault) in lost_answers().into_iter().enumerate() {
        let body = format!("same words {i}");
        s.forge.inject_fault(FaultRule::on(
            "POST",
            &format!("/issues/{n}/comments"),
            fault.clone(),
        ));
        let comment = s
            .client
            .create_comment(n, &body)
            .await
            .unwrap_or_else(|e| panic!("comment under {fault:?}: {e}"));
        let same: Vec<_> = s
            .forge
            .comments(n)
            .into_iter()
            .filter(|c| c.body == body)
            .collect();
        assert_eq!(same.len(), 1, "under {fault:?}: {same:#?}");
        assert_eq!(comment.id, same[0].id);
        assert_eq!(comment.author, "forgehand-bot");
    }
    assert_eq!(s.count("POST", "/comments"), lost_answers().len());
    // Looked for with `since`, so a long thread is not read whole.
    let looks: Vec<_> = s
        .forge
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/comments"))
        .collect();
    assert!(!looks.is_empty() && looks.iter().all(|r| r.query.contains("since=")));
    assert_eq!(s.count("GET", "/user"), 1, "the login is fetched once");
    s.assert_no_violations();
}

#[tokio::test]
async fn a_comment_that_did_not_land_is_sent_again() {
    let s = setup(fast()).await;
    let n = s.forge.create_issue("Talk", "body", &[]);
    for (i, fault) in plain_faults().into_iter().enumerate() {
        let body = format!("once {i}");
        s.forge.inject_fault(FaultRule::on(
            "POST",
            &format!("/issues/{n}/comments"),
            fault.clone(),
        ));
        s.client
            .create_comment(n, &body)
            .await
            .unwrap_or_else(|e| panic!("comment under {fault:?}: {e}"));
        let count = s
            .forge
            .comments(n)
            .iter()
            .filter(|c| c.body == body)
            .count();
        assert_eq!(count, 1, "under {fault:?}");
    }
    assert_eq!(s.count("POST", "/comments"), 2 * plain_faults().len());
    s.assert_no_violations();
}

#[tokio::test]
async fn a_pull_request_whose_answer_was_lost_is_found_not_recreated() {
    let s = setup(fast()).await;
    for (i, fault) in lost_answers().into_iter().enumerate() {
        let head = format!("fix/issue-{i}");
        s.push_branch(&head);
        s.forge
            .inject_fault(FaultRule::on("POST", "/pulls", fault.clone()));
        let pr = s
            .client
            .create_pull(&new_pull(&head))
            .await
            .unwrap_or_else(|e| panic!("PR under {fault:?}: {e}"));
        let pulls: Vec<_> = s
            .forge
            .pulls()
            .into_iter()
            .filter(|p| p.head == head)
            .collect();
        assert_eq!(pulls.len(), 1, "under {fault:?}");
        assert_eq!(pr.number, PrNumber(pulls[0].number));
        assert_eq!(pr.head_ref, head);
    }
    s.assert_no_violations();
}

#[tokio::test]
async fn a_merge_whose_answer_was_lost_ends_already_merged() {
    let s = setup(fast()).await;
    for (i, fault) in lost_answers().into_iter().enumerate() {
        let head = format!("fix/issue-{i}");
        s.push_branch(&head);
        let pr = s.client.create_pull(&new_pull(&head)).await.unwrap();
        s.forge.inject_fault(FaultRule::on(
            "POST",
            &format!("/pulls/{}/merge", pr.number),
            fault.clone(),
        ));
        let result = s
            .client
            .merge_pull(pr.number, &merge_of(&pr.head_sha))
            .await;
        assert!(
            matches!(result, Err(ForgeError::AlreadyMerged)),
            "under {fault:?}: {result:?}"
        );
        assert_eq!(s.forge.read(|st| st.merge_count(pr.number.0)), 1);
        assert!(s.forge.pull(pr.number.0).merged);
    }
    // Without a fault a merge is plainly Ok.
    s.push_branch("fix/clean");
    let pr = s.client.create_pull(&new_pull("fix/clean")).await.unwrap();
    s.client
        .merge_pull(pr.number, &merge_of(&pr.head_sha))
        .await
        .unwrap();
    assert_eq!(s.forge.merges().len(), lost_answers().len() + 1);
    s.assert_no_violations();
}

#[tokio::test]
async fn a_proxy_page_with_200_is_not_taken_for_success() {
    // Calls that only look at the status: a 200 page from a proxy must not pass for
    // "label added" or "merged" when the forge never saw the request.
    let s = setup(fast()).await;
    let n = s.forge.create_issue("Proxy", "", &[]);
    s.forge.create_label("backlog", "0075ca");
    s.push_branch("fix/proxy");
    let pr = s.client.create_pull(&new_pull("fix/proxy")).await.unwrap();
    s.forge.inject_fault(FaultRule::on(
        "POST",
        &format!("/issues/{n}/labels"),
        Fault::Html { status: 200 },
    ));
    s.forge
        .inject_fault(FaultRule::on("POST", "/merge", Fault::Html { status: 200 }));
    s.client.add_label(IssueNumber(n), "backlog").await.unwrap();
    s.client
        .merge_pull(pr.number, &merge_of(&pr.head_sha))
        .await
        .unwrap();
    assert_eq!(s.forge.faults_injected(), 2);
    assert_eq!(s.count("POST", &format!("/issues/{n}/labels")), 2);
    assert!(s.forge.issue(n).has_label("backlog"));
    assert_eq!(s.forge.read(|st| st.merge_count(pr.number.0)), 1);
    s.assert_no_violations();
}

#[tokio::test]
async fn labels_whose_answer_was_lost_exist_once() {
    let s = setup(fast()).await;
    s.forge.create_label("backlog", "0075ca");
    let names: Vec<String> = (0..lost_answers().len())
        .map(|i| format!("state {i}"))
        .collect();
    // Rules are used in order: the first label creation gets the first fault, and so on.
    for fault in lost_answers() {
        s.forge
            .inject_fault(FaultRule::on("POST", "/repos/acme/widget/labels", fault));
    }
    let mut wanted = names.clone();
    wanted.push("backlog".to_owned());
    s.client.ensure_labels(&wanted).await.unwrap();
    assert_eq!(s.forge.faults_injected(), lost_answers().len() as u64);
    let labels = s.forge.read(|st| st.labels().to_vec());
    for name in &wanted {
        let count = labels.iter().filter(|l| &l.name == name).count();
        assert_eq!(count, 1, "label {name:?}: {labels:#?}");
    }
    // A label whose creation lost its answer is usable at once.
    let n = s.forge.create_issue("Label me", "", &[]);
    s.client.add_label(IssueNumber(n), &names[0]).await.unwrap();
    assert!(s.forge.issue(n).has_label(&names[0]));
    s.assert_no_violations();
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let s = setup(fast()).await;
    let n = s.forge.create_issue("Busy", "", &[]);
    s.forge.inject_fault(FaultRule::on(
        "GET",
        &format!("/issues/{n}"),
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    ));
    s.client.get_issue(IssueNumber(n)).await.unwrap();
    let tries: Vec<_> = s
        .forge
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/issues/{n}")))
        .collect();
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[0].status, 429);
    let gap = tries[1].at - tries[0].at;
    assert!(
        gap >= chrono::TimeDelta::milliseconds(950),
        "retried after {gap:?}"
    );
    s.assert_no_violations();
}

/// Calls of the chaos run, by kind; each is issued in a fixed order.
const CHAOS_CALLS: usize = 200;

#[tokio::test]
async fn chaos_leaves_the_state_consistent() {
    let s = setup(RetryPolicy {
        max_attempts: 12,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        request_timeout: Duration::from_millis(300),
        max_retry_after: Duration::from_millis(10),
    })
    .await;
    let issues: Vec<u64> = (1..=4)
        .map(|i| {
            s.forge
                .create_issue(&format!("Issue {i}"), "", &["backlog"])
        })
        .collect();
    let heads = ["fix/issue-1", "fix/issue-2", "fix/issue-3"];
    for head in heads {
        s.push_branch(head);
    }
    let mut faults = plain_faults();
    faults.extend(lost_answers().into_iter().map(|f| match f {
        // A lost answer arrives a little after the client stopped waiting.
        Fault::AfterApply(inner) if matches!(*inner, Fault::Delay(_)) => {
            Fault::Delay(Duration::from_millis(400)).after_apply()
        }
        other => other,
    }));
    faults.push(Fault::Delay(Duration::from_millis(20)));
    faults.push(Fault::Status {
        status: 429,
        retry_after: Some(1),
    });
    s.forge.set_chaos(Chaos {
        rate: 0.3,
        seed: std::env::var("SEEDX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x5eed_f00d),
        faults,
    });

    let mut comments = Vec::new();
    let mut pulls = Vec::new();
    let mut failures = Vec::new();
    for i in 0..CHAOS_CALLS {
        let n = issues[(i / 10) % issues.len()];
        let result: Result<(), ForgeError> = match i % 10 {
            0 | 5 => {
                let body = format!("note {i}");
                comments.push((n, body.clone()));
                s.client.create_comment(n, &body).await.map(drop)
            }
            1 => s.client.add_label(IssueNumber(n), "working").await,
            2 => s.client.remove_label(IssueNumber(n), "working").await,
            3 => {
                let names = [format!("kind {}", i % 7), "blocked".to_owned()];
                s.client.ensure_labels(&names).await
            }
            4 => s.client.get_issue(IssueNumber(n)).await.map(drop),
            6 => s.client.list_comments(n).await.map(drop),
            7 => match heads.get(pulls.len()) {
                Some(head) => s.client.create_pull(&new_pull(head)).await.map(|pr| {
                    pulls.push(pr);
                }),
                None => s.client.find_pull("main", heads[0]).await.map(drop),
            },
            8 => match pulls.get(i / 10) {
                Some(pr) => match s
                    .client
                    .merge_pull(pr.number, &merge_of(&pr.head_sha))
                    .await
                {
                    // Our own merge, whose answer was lost.
                    Err(ForgeError::AlreadyMerged) => Ok(()),
                    other => other,
                },
                None => s.client.list_open_pulls().await.map(drop),
            },
            _ => s.client.list_open_issues("backlog").await.map(drop),
        };
        if let Err(e) = result {
            failures.push(format!("call {i}: {e}"));
        }
    }
    s.forge.clear_chaos();
    assert!(failures.is_empty(), "{failures:#?}");
    let lost_posts = s
        .forge
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && matches!(r.fault, Some(Fault::AfterApply(_))))
        .count();
    assert!(lost_posts > 0, "no POST lost its answer: pick another seed");
    let injected = s.forge.faults_injected();
    let requests = s.forge.request_count() as u64;
    assert!(
        injected * 5 > requests && injected * 3 < requests * 2,
        "{injected} faults over {requests} requests at a rate of 0.3"
    );

    for (n, body) in &comments {
        let count = s
            .forge
            .comments(*n)
            .iter()
            .filter(|c| &c.body == body)
            .count();
        assert_eq!(count, 1, "comment {body:?} on #{n}");
    }
    let labels = s.forge.read(|st| st.labels().to_vec());
    let mut names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate labels: {labels:#?}");
    for head in heads {
        let count = s.forge.pulls().iter().filter(|p| p.head == head).count();
        assert_eq!(count, 1, "pull requests from {head}");
    }
    for pr in &pulls {
        assert_eq!(s.forge.read(|st| st.merge_count(pr.number.0)), 1);
    }
    s.assert_no_violations();
}
