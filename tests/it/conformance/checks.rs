//! The contract every `Forge` keeps, one check per area, written against a
//! [`Driver`] and its `&dyn Forge` only.

use std::collections::BTreeSet;

use forgehand::forge::{
    CommitSha, ForgeError, IssueNumber, IssueState, MergeMethod, MergeRequest, NewPull, PrNumber,
    PullRequest, ReviewState, StatusState,
};

use super::{Ci, Driver, PRIMARY, Reviewer, Support};

/// The branch forgehand would push for issue `n`.
fn branch_of(d: &dyn Driver, n: IssueNumber) -> String {
    format!("fix/issue-{}", d.forge().issue_key(n))
}

fn new_pull(branch: &str) -> NewPull {
    NewPull {
        head: branch.to_owned(),
        base: PRIMARY.to_owned(),
        title: format!("fix: {branch}"),
        body: "The agent's summary.".to_owned(),
        draft: false,
    }
}

/// An issue, its branch pushed with `ci`, and its pull request.
async fn open_pull(d: &dyn Driver, title: &str, ci: Ci) -> (IssueNumber, PullRequest) {
    let n = d.create_issue(title, "Do it.", &["in-progress"]).await;
    let branch = branch_of(d, n);
    let head = d.push_branch(&branch, ci).await;
    let pr = d
        .forge()
        .create_pull(&new_pull(&branch))
        .await
        .expect("opening a pull request");
    assert_eq!(pr.head_sha, head);
    (n, pr)
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

pub async fn labels(d: &dyn Driver) {
    let f = d.forge();
    let names = strings(&["backlog", "in-progress", "priority"]);
    f.ensure_labels(&names).await.expect("ensuring labels");
    f.ensure_labels(&names).await.expect("ensuring them again");
    let missing = f.missing_labels(&names).await.expect("asking which lack");
    assert!(missing.is_empty(), "ensured, yet missing: {missing:?}");
    let n = d.create_issue("Labels", "Body.", &["backlog"]).await;

    f.add_label(n, "in-progress").await.expect("adding a label");
    f.add_label(n, "in-progress")
        .await
        .expect("adding it again");
    let issue = f.get_issue(n).await.expect("reading the issue");
    assert!(
        issue.has_label("backlog") && issue.has_label("in-progress"),
        "{issue:?}"
    );
    assert_eq!(
        issue.labels.iter().filter(|l| *l == "in-progress").count(),
        1,
        "added once: {issue:?}"
    );

    f.remove_label(n, "backlog")
        .await
        .expect("removing a label");
    let issue = f.get_issue(n).await.expect("reading the issue");
    assert!(
        !issue.has_label("backlog") && issue.has_label("in-progress"),
        "{issue:?}"
    );
    f.remove_label(n, "backlog")
        .await
        .expect("removing it again is fine");
    f.remove_label(n, "priority")
        .await
        .expect("removing a label the issue never had is fine");
}

pub async fn open_issues_by_label(d: &dyn Driver) {
    let f = d.forge();
    // More than one page of every forge's (Forgejo: 50).
    let mut wanted = BTreeSet::new();
    for i in 0..55 {
        wanted.insert(
            d.create_issue(&format!("Task {i}"), "Body.", &["backlog"])
                .await,
        );
    }
    let other = d.create_issue("Elsewhere", "Body.", &["priority"]).await;
    let closed = d.create_issue("Done already", "Body.", &["backlog"]).await;
    f.close_issue(closed).await.expect("closing an issue");
    let (_, pr) = open_pull(d, "A pull request", Ci::Pass).await;
    // Same numbering as issues: labelled, it must still not come back as one.
    let _labelled = d
        .label_pull(pr.number, "backlog")
        .await
        .or_say("a labelled pull request among the issues");

    let listed = f.list_open_issues("backlog").await.expect("listing issues");
    let got: BTreeSet<IssueNumber> = listed.iter().map(|i| i.number).collect();
    assert_eq!(got, wanted, "every page, open issues with the label only");
    assert!(!got.contains(&other) && !got.contains(&closed));
    assert!(!got.contains(&IssueNumber(pr.number.0)), "no pull requests");
    assert!(listed.iter().all(|i| i.state == IssueState::Open));
}

pub async fn get_and_close_issue(d: &dyn Driver) {
    let f = d.forge();
    let n = d.create_issue("Read me", "The body.", &["backlog"]).await;
    let issue = f.get_issue(n).await.expect("reading the issue");
    assert_eq!(issue.number, n);
    assert_eq!(issue.title, "Read me");
    assert_eq!(issue.body, "The body.");
    assert_eq!(issue.state, IssueState::Open);
    assert!(issue.has_label("backlog"));
    assert!(!issue.author.is_empty());
    assert_eq!(issue.html_url, f.issue_url(n), "the forge's own link");

    f.close_issue(n).await.expect("closing the issue");
    let issue = f.get_issue(n).await.expect("reading the closed issue");
    assert_eq!(issue.state, IssueState::Closed);
    assert_eq!(
        issue.html_url,
        f.issue_url(n),
        "followed to where it is now"
    );
    let open = f.list_open_issues("backlog").await.expect("listing issues");
    assert!(
        open.iter().all(|i| i.number != n),
        "a closed issue is not open"
    );
    f.close_issue(n).await.expect("closing it again is fine");

    match f.get_issue(IssueNumber(999_999)).await {
        Err(ForgeError::NotFound(_)) => {}
        other => panic!("a missing issue is NotFound: {other:?}"),
    }
}

pub async fn comments(d: &dyn Driver) {
    let f = d.forge();
    let me = f.current_user().await.expect("forgehand's login");
    let n = d.create_issue("Talk", "Body.", &["backlog"]).await;
    assert!(f.list_comments(n.0).await.expect("no comments").is_empty());

    let mine = f.create_comment(n.0, "first").await.expect("commenting");
    assert_eq!(
        (mine.author.as_str(), mine.body.as_str()),
        (me.as_str(), "first")
    );
    let person = d
        .comment_as_person(n.0, "second")
        .await
        .or_say("a comment by a person");

    let listed = f.list_comments(n.0).await.expect("listing comments");
    let mut expected = vec![(me.clone(), "first".to_owned())];
    if let Some(login) = person {
        expected.push((login, "second".to_owned()));
    }
    let got: Vec<(String, String)> = listed
        .iter()
        .map(|c| (c.author.clone(), c.body.clone()))
        .collect();
    assert_eq!(got, expected, "oldest first");
    assert_eq!(listed[0].id, mine.id);

    // Pull requests share the numbering and take comments the same way.
    let (_, pr) = open_pull(d, "Talk on a PR", Ci::Pass).await;
    f.create_comment(pr.number.0, "on the pull request")
        .await
        .expect("commenting on a pull request");
    let on_pr = f.list_comments(pr.number.0).await.expect("listing");
    assert_eq!(on_pr.len(), 1);
    assert_eq!(on_pr[0].body, "on the pull request");
    assert_eq!(
        f.list_comments(n.0).await.expect("listing").len(),
        listed.len()
    );
}

pub async fn pulls(d: &dyn Driver) {
    let f = d.forge();
    let n = d.create_issue("Pull me", "Body.", &["in-progress"]).await;
    let branch = branch_of(d, n);
    assert!(
        f.find_pull(PRIMARY, &branch)
            .await
            .expect("finding")
            .is_none(),
        "none yet"
    );
    match f.create_pull(&new_pull(&branch)).await {
        Err(ForgeError::NotFound(_)) => {}
        other => panic!("a pull request from a missing branch is NotFound: {other:?}"),
    }

    let head = d.push_branch(&branch, Ci::Pass).await;
    let new = new_pull(&branch);
    let pr = f.create_pull(&new).await.expect("opening a pull request");
    assert_eq!(pr.head_ref, branch);
    assert_eq!(pr.head_sha, head);
    assert_eq!(pr.base_ref, PRIMARY);
    assert_eq!(pr.title, new.title);
    assert_eq!(pr.state, IssueState::Open);
    assert!(!pr.merged && pr.merge_commit_sha.is_none());
    assert_ne!(pr.mergeable, Some(false), "a clean branch merges");

    let again = f.create_pull(&new).await.expect("opening it again");
    assert_eq!(again.number, pr.number, "the one that exists");
    let found = f.find_pull(PRIMARY, &branch).await.expect("finding");
    assert_eq!(found.map(|p| p.number), Some(pr.number));
    let got = f.get_pull(pr.number).await.expect("reading");
    assert_eq!((got.head_sha, got.head_ref), (head, branch));
    let open = f.list_open_pulls().await.expect("listing pulls");
    assert!(open.iter().any(|p| p.number == pr.number), "{open:?}");

    match f.get_pull(PrNumber(999_999)).await {
        Err(ForgeError::NotFound(_)) => {}
        other => panic!("a missing pull request is NotFound: {other:?}"),
    }
}

pub async fn reviews(d: &dyn Driver) {
    let f = d.forge();
    let (_, pr) = open_pull(d, "Review me", Ci::Pass).await;
    assert!(
        f.list_reviews(pr.number)
            .await
            .expect("none yet")
            .is_empty()
    );

    d.review(
        pr.number,
        ReviewState::ChangesRequested,
        Reviewer::Writer,
        "fix the typo",
    )
    .await
    .or_say("a change request")
    .expect("every forge takes change requests");
    d.review(
        pr.number,
        ReviewState::Approved,
        Reviewer::Writer,
        "looks good",
    )
    .await
    .or_say("an approval")
    .expect("every forge takes approvals");
    let outsider = d
        .review(
            pr.number,
            ReviewState::Approved,
            Reviewer::Outsider,
            "lgtm!",
        )
        .await
        .or_say("a review that does not count");
    let line = d
        .review_line(pr.number, "greeting.txt", 1, "a nit")
        .await
        .or_say("a review's line comment");

    let reviews = f.list_reviews(pr.number).await.expect("listing reviews");
    let by_body = |body: &str| {
        reviews
            .iter()
            .find(|r| r.body == body)
            .unwrap_or_else(|| panic!("no review {body:?} in {reviews:#?}"))
    };
    let changes = by_body("fix the typo");
    assert_eq!(changes.state, ReviewState::ChangesRequested);
    let approval = by_body("looks good");
    assert_eq!(approval.state, ReviewState::Approved);
    for r in [changes, approval] {
        assert!(r.official, "a writer's review counts: {r:?}");
        assert_eq!(r.commit_id, pr.head_sha, "given on the head");
        assert!(!r.dismissed && !r.stale, "{r:?}");
    }
    assert!(changes.submitted_at <= approval.submitted_at);
    if outsider.is_some() {
        let drive_by = by_body("lgtm!");
        assert_eq!(drive_by.state, ReviewState::Approved);
        assert!(!drive_by.official, "an outsider's review does not count");
    }
    assert!(
        f.list_review_comments(pr.number, approval.id)
            .await
            .expect("a review without line comments")
            .is_empty()
    );
    if line.is_some() {
        let with_line = reviews
            .iter()
            .find(|r| r.state == ReviewState::Commented)
            .expect("the review with the line comment");
        let comments = f
            .list_review_comments(pr.number, with_line.id)
            .await
            .expect("its line comments");
        assert_eq!(comments.len(), 1, "{comments:?}");
        assert_eq!(
            (comments[0].path.as_str(), comments[0].body.as_str()),
            ("greeting.txt", "a nit")
        );
    }
}

pub async fn combined_status(d: &dyn Driver) {
    let f = d.forge();
    let quiet = d.push_branch("conformance/quiet", Ci::Silent).await;
    let first = f.combined_status(&quiet).await.expect("reading statuses");
    assert_eq!(first.state, d.unreported_status(), "{first:?}");

    let green = d.push_branch("conformance/green", Ci::Pass).await;
    d.ci_reported(&green).await;
    let status = f.combined_status(&green).await.expect("reading statuses");
    assert_eq!(status.state, Some(StatusState::Success), "{status:?}");
    assert!(!status.statuses.is_empty());
    assert!(
        status
            .statuses
            .iter()
            .all(|s| s.state == StatusState::Success)
    );

    let red = d.push_branch("conformance/red", Ci::Fail).await;
    d.ci_reported(&red).await;
    let status = f.combined_status(&red).await.expect("reading statuses");
    assert_eq!(status.state, Some(StatusState::Failure), "{status:?}");
    assert!(
        status
            .statuses
            .iter()
            .any(|s| s.state == StatusState::Failure && !s.context.is_empty()),
        "{status:?}"
    );
}

pub async fn merge(d: &dyn Driver) {
    let f = d.forge();
    let (_, pr) = open_pull(d, "Merge me", Ci::Pass).await;
    d.ci_reported(&pr.head_sha).await;
    let before = d.primary_head().await;
    let request = |head: &CommitSha| MergeRequest {
        method: MergeMethod::Merge,
        head_sha: head.clone(),
        delete_branch: false,
    };

    match f.merge_pull(pr.number, &request(&before)).await {
        Err(ForgeError::Conflict(_)) => {}
        other => {
            panic!("a merge of a head the pull request no longer has is a Conflict: {other:?}")
        }
    }
    assert_eq!(d.primary_head().await, before, "nothing merged");

    f.merge_pull(pr.number, &request(&pr.head_sha))
        .await
        .expect("merging");
    let merged = f
        .get_pull(pr.number)
        .await
        .expect("reading the merged pull");
    assert!(merged.merged, "{merged:?}");
    assert_eq!(merged.state, IssueState::Closed);
    let commit = merged.merge_commit_sha.expect("a merge commit");
    assert_eq!(
        d.primary_head().await,
        commit,
        "the primary branch moved to it"
    );
    assert!(
        f.list_open_pulls()
            .await
            .expect("listing")
            .iter()
            .all(|p| p.number != pr.number)
    );

    match f.merge_pull(pr.number, &request(&pr.head_sha)).await {
        Err(ForgeError::AlreadyMerged) => {}
        other => panic!("a second merge is AlreadyMerged: {other:?}"),
    }
}

pub async fn keys_and_urls(d: &dyn Driver) {
    let f = d.forge();
    let n = d.create_issue("Named", "Body.", &["backlog"]).await;
    let key = f.issue_key(n);
    // It goes into session, branch and worktree names.
    assert!(
        !key.is_empty()
            && !key.starts_with('-')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{key:?}"
    );
    assert_eq!(f.issue_for_key(&key), Some(n));
    assert_eq!(f.issue_for_key("no-such-issue"), None);
    assert_eq!(f.issue_url(n), d.expected_issue_url(n));
}

pub async fn write_access(d: &dyn Driver) {
    let f = d.forge();
    let me = f.current_user().await.expect("forgehand's login");
    assert!(!me.is_empty());
    assert!(f.can_write(&d.writer()).await.expect("asking"));
    if let Some(outsider) = d.outsider().or_say("someone without write access") {
        assert!(!f.can_write(&outsider).await.expect("asking"));
    }
}

pub async fn reports_changes(d: &dyn Driver) {
    let f = d.forge();
    d.create_issue("Noticed", "Body.", &["backlog"]).await;
    match (f.reports_changes(), d.next_nudge().await) {
        (true, Support::Yes(_)) => {}
        (false, Support::No(why)) => eprintln!("conformance: no change reports: {why}"),
        (true, Support::No(why)) => panic!("says it reports changes, but: {why}"),
        (false, Support::Yes(nudge)) => panic!("says it reports no changes, yet sent {nudge:?}"),
    }
}
