//! The fake forge's state: issues and pull requests (one number sequence), labels,
//! comments, reviews, commit statuses and merges, plus the request log. Tests read it
//! through [`ForgeState`]'s accessors (in `wait_until` predicates) or through snapshots.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::behaviour::Behaviour;
use super::git::BareRepo;
use super::log::{Faults, RequestRecord, Violation, ViolationKind};

/// An issue, or the issue half of a pull request (title, body, state, labels live here).
#[derive(Debug, Clone)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    /// `"open"` or `"closed"`, as on the wire.
    pub state: String,
    /// Label names, in the order they were added.
    pub labels: Vec<String>,
    /// Login of the author.
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Issues this one depends on (the forge's dependency API, not body text).
    pub depends_on: Vec<u64>,
    pub is_pull: bool,
}

impl Issue {
    pub fn has_label(&self, name: &str) -> bool {
        self.labels.iter().any(|l| l == name)
    }

    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

#[derive(Debug, Clone)]
pub struct Label {
    pub id: u64,
    pub name: String,
    /// Six hex digits without `#`, as Forgejo returns it.
    pub color: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub user: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The pull-request half of a PR; its number is shared with an [`Issue`].
#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    /// Head branch name (without `refs/heads/`).
    pub head: String,
    pub base: String,
    /// Head commit, refreshed from the bare repository whenever the fake settles.
    pub head_sha: String,
    pub base_sha: String,
    pub mergeable: bool,
    pub merged: bool,
    pub merged_at: Option<DateTime<Utc>>,
    pub merged_by: Option<String>,
    pub merge_commit_sha: Option<String>,
    /// Every head commit seen, oldest first (one entry per push the fake noticed).
    pub heads_seen: Vec<String>,
    /// Heads the simulated reviewer has already reviewed.
    pub(crate) reviewed_heads: Vec<String>,
    /// Whether `RequestChangesOnce` has used its one request.
    pub(crate) changes_requested: bool,
    /// The (base, head) pair `mergeable` was computed for.
    pub(crate) mergeable_for: (String, String),
}

impl Pull {
    /// PR `number` from `head` into `base`, just opened: its commits are read from the
    /// bare repository when the fake next settles.
    pub fn new(number: u64, head: String, base: String) -> Self {
        Self {
            number,
            head,
            base,
            head_sha: String::new(),
            base_sha: String::new(),
            mergeable: false,
            merged: false,
            merged_at: None,
            merged_by: None,
            merge_commit_sha: None,
            heads_seen: Vec::new(),
            reviewed_heads: Vec::new(),
            changes_requested: false,
            mergeable_for: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReviewComment {
    pub id: u64,
    pub path: String,
    /// Line in the new file (Forgejo's `position` for new-side comments).
    pub position: u64,
    pub body: String,
    pub user: String,
    pub commit_id: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Review {
    pub id: u64,
    pub pull: u64,
    pub user: String,
    /// `APPROVED`, `REQUEST_CHANGES` or `COMMENT`.
    pub state: String,
    pub body: String,
    pub commit_id: String,
    pub dismissed: bool,
    /// Set when a newer head is pushed, as Forgejo does.
    pub stale: bool,
    /// Whether the review counts: by default, as on Forgejo, when its author may
    /// write to the repository (see [`ForgeState::permission`]).
    pub official: bool,
    pub submitted_at: DateTime<Utc>,
    pub comments: Vec<ReviewComment>,
}

#[derive(Debug, Clone)]
pub struct CommitStatus {
    pub id: u64,
    pub sha: String,
    pub context: String,
    /// `pending`, `success`, `error`, `failure` or `warning`.
    pub state: String,
    pub description: String,
    pub target_url: String,
    pub creator: String,
    pub created_at: DateTime<Utc>,
}

/// One merge the fake performed.
#[derive(Debug, Clone)]
pub struct MergeRecord {
    pub pull: u64,
    /// The `Do` style requested.
    pub style: String,
    pub head_sha: String,
    pub base_before: String,
    pub base_after: String,
    pub at: DateTime<Utc>,
}

/// Everything the fake knows. Fields are private to the fake; tests use the accessors.
#[derive(Debug)]
pub struct ForgeState {
    pub(crate) base_url: String,
    /// The only token accepted (`Authorization: token <T>` or `Bearer <T>`).
    pub(crate) token: String,
    pub(crate) owner: String,
    pub(crate) repo: String,
    pub(crate) bot_login: String,
    pub(crate) default_branch: String,
    pub(crate) git: BareRepo,
    pub(crate) behaviour: Behaviour,
    pub(crate) next_number: u64,
    pub(crate) next_id: u64,
    pub(crate) issues: BTreeMap<u64, Issue>,
    pub(crate) pulls: BTreeMap<u64, Pull>,
    pub(crate) labels: Vec<Label>,
    pub(crate) comments: Vec<Comment>,
    pub(crate) reviews: Vec<Review>,
    pub(crate) statuses: Vec<CommitStatus>,
    pub(crate) merges: Vec<MergeRecord>,
    pub(crate) user_ids: HashMap<String, u64>,
    /// Login → access mode on the repository (`none`, `read`, `write`, `admin`,
    /// `owner`), as `GET …/collaborators/{login}/permission` tells it. A login
    /// missing here reads, as any signed-in account does on a public repository.
    pub(crate) permissions: HashMap<String, String>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) faults: Faults,
    /// Per PR, how many heads the simulated CI has run on (for `FailFirst`).
    pub(crate) ci_runs: HashMap<u64, u32>,
    /// The repository's webhooks, as `GET …/hooks` gives them.
    pub(crate) hooks: Vec<Value>,
    /// While set, issue lists answer from these issues as they were when
    /// it was set: a list read just before people changed things.
    pub(crate) lists_as_of: Option<BTreeMap<u64, Issue>>,
}

impl ForgeState {
    pub(crate) fn new(base_url: String, options: &super::FakeForgeOptions) -> Self {
        Self {
            base_url,
            token: options.token.clone(),
            owner: options.owner.clone(),
            repo: options.repo.clone(),
            bot_login: options.bot_login.clone(),
            default_branch: options.default_branch.clone(),
            git: BareRepo::new(&options.bare_repo),
            behaviour: Behaviour::default(),
            next_number: 1,
            next_id: 1,
            hooks: Vec::new(),
            lists_as_of: None,
            issues: BTreeMap::new(),
            pulls: BTreeMap::new(),
            labels: Vec::new(),
            comments: Vec::new(),
            reviews: Vec::new(),
            statuses: Vec::new(),
            merges: Vec::new(),
            user_ids: HashMap::new(),
            // The repository's owner, forgehand (a repository admin may read
            // everyone's rights), and the test's people: the author of its issues
            // and comments and the simulated reviewer.
            permissions: [
                (options.owner.as_str(), "owner"),
                (options.bot_login.as_str(), "admin"),
                (super::HUMAN, "write"),
                (super::behaviour::REVIEWER, "write"),
            ]
            .into_iter()
            .map(|(login, mode)| (login.to_owned(), mode.to_owned()))
            .collect(),
            requests: Vec::new(),
            violations: Vec::new(),
            faults: Faults::default(),
            ci_runs: HashMap::new(),
        }
    }

    // ----- accessors for tests -----

    /// The issue (or PR issue) `n`; panics with the known numbers if there is none.
    pub fn issue(&self, n: u64) -> &Issue {
        self.issues.get(&n).unwrap_or_else(|| {
            panic!(
                "fake forge has no issue #{n} (has {:?})",
                self.issues.keys()
            )
        })
    }

    pub fn try_issue(&self, n: u64) -> Option<&Issue> {
        self.issues.get(&n)
    }

    /// All issues and PR issues, by number.
    pub fn issues(&self) -> impl Iterator<Item = &Issue> {
        self.issues.values()
    }

    pub fn pull(&self, n: u64) -> Option<&Pull> {
        self.pulls.get(&n)
    }

    pub fn pulls(&self) -> impl Iterator<Item = &Pull> {
        self.pulls.values()
    }

    /// The PR whose head is `branch`, newest first.
    pub fn pull_for_branch(&self, branch: &str) -> Option<&Pull> {
        self.pulls.values().rev().find(|p| p.head == branch)
    }

    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    pub fn comments(&self, issue: u64) -> impl Iterator<Item = &Comment> {
        self.comments.iter().filter(move |c| c.issue == issue)
    }

    pub fn reviews(&self, pull: u64) -> impl Iterator<Item = &Review> {
        self.reviews.iter().filter(move |r| r.pull == pull)
    }

    /// Every status posted for `sha`, oldest first.
    pub fn statuses(&self, sha: &str) -> impl Iterator<Item = &CommitStatus> {
        self.statuses.iter().filter(move |s| s.sha == sha)
    }

    /// The latest status per context for `sha`, in context order.
    pub fn latest_statuses(&self, sha: &str) -> Vec<&CommitStatus> {
        let mut latest: BTreeMap<&str, &CommitStatus> = BTreeMap::new();
        for s in self.statuses(sha) {
            latest.insert(&s.context, s);
        }
        latest.into_values().collect()
    }

    /// Forgejo's combined state: the worst latest status per context
    /// (error < failure < warning < pending < success); `""` when there are none.
    pub fn combined_state(&self, sha: &str) -> String {
        const ORDER: [&str; 5] = ["error", "failure", "warning", "pending", "success"];
        let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(0);
        self.latest_statuses(sha)
            .iter()
            .map(|s| s.state.as_str())
            .min_by_key(|s| rank(s))
            .unwrap_or("")
            .to_owned()
    }

    /// Label `id`, which a handler has just created.
    pub fn created_label(&self, id: u64) -> Label {
        let label = self.labels.iter().find(|l| l.id == id);
        label.cloned().expect("label just created")
    }

    /// Comment `id`, which a handler has just created.
    pub fn created_comment(&self, id: u64) -> Comment {
        let comment = self.comments.iter().find(|c| c.id == id);
        comment.cloned().expect("comment just created")
    }

    /// Commit status `id`, which a handler has just created.
    pub fn created_status(&self, id: u64) -> CommitStatus {
        let status = self.statuses.iter().find(|s| s.id == id);
        status.cloned().expect("status just created")
    }

    /// Sets issue `n`'s title and body where given, stamping it as changed.
    pub fn edit_text(&mut self, n: u64, title: Option<&str>, body: Option<&str>) {
        let issue = self.issues.get_mut(&n).expect("issue exists");
        if let Some(title) = title {
            issue.title = title.to_owned();
            issue.updated_at = Utc::now();
        }
        if let Some(body) = body {
            issue.body = body.to_owned();
            issue.updated_at = Utc::now();
        }
    }

    /// The head commit of PR `pull`; empty when there is no such PR.
    pub fn head_of(&self, pull: u64) -> String {
        self.pulls
            .get(&pull)
            .map(|p| p.head_sha.clone())
            .unwrap_or_default()
    }

    pub fn merges(&self) -> &[MergeRecord] {
        &self.merges
    }

    /// How many times PR `pull` was merged (a correct client makes it at most 1).
    pub fn merge_count(&self, pull: u64) -> usize {
        self.merges.iter().filter(|m| m.pull == pull).count()
    }

    pub fn requests(&self) -> &[RequestRecord] {
        &self.requests
    }

    /// How many requests got an injected fault so far.
    pub fn faults_injected(&self) -> u64 {
        self.faults.injected
    }

    /// Requests whose method matches and whose path contains `path_part`.
    pub fn requests_matching<'a>(
        &'a self,
        method: &'a str,
        path_part: &'a str,
    ) -> impl Iterator<Item = &'a RequestRecord> {
        self.requests
            .iter()
            .filter(move |r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_part))
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// `login`'s access mode on the repository (`read` unless the table says otherwise).
    pub fn permission(&self, login: &str) -> &str {
        self.permissions.get(login).map_or("read", String::as_str)
    }

    /// Whether `login` may write: what makes its reviews official by default.
    pub fn may_write(&self, login: &str) -> bool {
        matches!(self.permission(login), "write" | "admin" | "owner")
    }

    /// How often forgehand asked for `login`'s rights.
    pub fn permission_requests(&self, login: &str) -> usize {
        let path = format!("/collaborators/{login}/permission");
        self.requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&path))
            .count()
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// A readable summary for timeout errors: issues, PRs, reviews, statuses, merges,
    /// violations and the last requests.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for i in self.issues.values() {
            let _ = writeln!(
                out,
                "#{} [{}] {:?} labels={:?} by {}",
                i.number, i.state, i.title, i.labels, i.user
            );
        }
        for p in self.pulls.values() {
            let _ = writeln!(
                out,
                "PR #{} {} -> {} head={} merged={} mergeable={} combined={:?}",
                p.number,
                p.head,
                p.base,
                p.head_sha,
                p.merged,
                p.mergeable,
                self.combined_state(&p.head_sha)
            );
        }
        for r in &self.reviews {
            let _ = writeln!(
                out,
                "review {} on PR #{} by {}: {} @ {} official={}",
                r.id, r.pull, r.user, r.state, r.commit_id, r.official
            );
        }
        for c in &self.comments {
            let _ = writeln!(
                out,
                "comment {} on #{} by {}: {:?}",
                c.id, c.issue, c.user, c.body
            );
        }
        for m in &self.merges {
            let _ = writeln!(
                out,
                "merge of PR #{} ({}) -> {}",
                m.pull, m.style, m.base_after
            );
        }
        for v in &self.violations {
            let _ = writeln!(
                out,
                "VIOLATION {:?} {} {}: {}",
                v.kind, v.method, v.path, v.detail
            );
        }
        let skip = self.requests.len().saturating_sub(20);
        for r in &self.requests[skip..] {
            let _ = writeln!(
                out,
                "{} {} {}?{} -> {}",
                r.at.format("%T%.3f"),
                r.method,
                r.path,
                r.query,
                r.status
            );
        }
        out
    }

    // ----- primitives shared by the HTTP handlers and the control methods -----

    pub(crate) fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) fn user_id(&mut self, login: &str) -> u64 {
        let next = self.user_ids.len() as u64 + 1;
        *self.user_ids.entry(login.to_owned()).or_insert(next)
    }

    pub(crate) fn violation(
        &mut self,
        kind: ViolationKind,
        method: &str,
        path: &str,
        detail: impl Into<String>,
    ) {
        self.violations.push(Violation {
            kind,
            method: method.to_owned(),
            path: path.to_owned(),
            detail: detail.into(),
        });
    }

    pub(crate) fn new_issue(&mut self, title: &str, body: &str, user: &str, is_pull: bool) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        let now = Utc::now();
        self.issues.insert(
            number,
            Issue {
                number,
                title: title.to_owned(),
                body: body.to_owned(),
                state: "open".to_owned(),
                labels: Vec::new(),
                user: user.to_owned(),
                created_at: now,
                updated_at: now,
                closed_at: None,
                depends_on: Vec::new(),
                is_pull,
            },
        );
        number
    }

    pub(crate) fn label_by_name(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.name == name)
    }

    pub(crate) fn new_label(&mut self, name: &str, color: &str, description: &str) -> u64 {
        let id = self.fresh_id();
        self.labels.push(Label {
            id,
            name: name.to_owned(),
            color: color.trim_start_matches('#').to_owned(),
            description: description.to_owned(),
        });
        id
    }

    /// Adds a label by name to an issue (no-op if present); the label must exist.
    pub(crate) fn attach_label(&mut self, issue: u64, name: &str) {
        if let Some(i) = self.issues.get_mut(&issue)
            && !i.labels.iter().any(|l| l == name)
        {
            i.labels.push(name.to_owned());
            i.updated_at = Utc::now();
        }
    }

    /// Attach the labels a create request names by id (`"labels": [1, 2]`);
    /// unknown ids are ignored, as Forgejo does.
    pub(crate) fn attach_label_ids(&mut self, issue: u64, body: &serde_json::Value) {
        let ids = body
            .get("labels")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_u64);
        let names: Vec<String> = ids
            .filter_map(|id| {
                self.labels
                    .iter()
                    .find(|l| l.id == id)
                    .map(|l| l.name.clone())
            })
            .collect();
        for name in names {
            self.attach_label(issue, &name);
        }
    }

    pub(crate) fn set_issue_state(&mut self, issue: u64, state: &str) {
        if let Some(i) = self.issues.get_mut(&issue)
            && i.state != state
        {
            i.state = state.to_owned();
            i.updated_at = Utc::now();
            i.closed_at = (state == "closed").then(Utc::now);
        }
    }

    pub(crate) fn new_comment(&mut self, issue: u64, user: &str, body: &str) -> u64 {
        let id = self.fresh_id();
        self.comments.push(Comment {
            id,
            issue,
            user: user.to_owned(),
            body: body.to_owned(),
            created_at: Utc::now(),
        });
        if let Some(i) = self.issues.get_mut(&issue) {
            i.updated_at = Utc::now();
        }
        id
    }

    pub(crate) fn new_status(
        &mut self,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
        target_url: &str,
        creator: &str,
    ) -> u64 {
        let id = self.fresh_id();
        self.statuses.push(CommitStatus {
            id,
            sha: sha.to_owned(),
            context: context.to_owned(),
            state: state.to_owned(),
            description: description.to_owned(),
            target_url: target_url.to_owned(),
            creator: creator.to_owned(),
            created_at: Utc::now(),
        });
        id
    }

    /// Submits a review; `comments` are (path, position, text). `official`
    /// `None` makes it official when `user` may write.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_review(
        &mut self,
        pull: u64,
        user: &str,
        state: &str,
        body: &str,
        commit_id: &str,
        comments: &[(String, u64, String)],
        official: Option<bool>,
    ) -> u64 {
        let official = official.unwrap_or_else(|| self.may_write(user));
        let id = self.fresh_id();
        let now = Utc::now();
        let comments = comments
            .iter()
            .map(|(path, position, text)| ReviewComment {
                id: self.fresh_id(),
                path: path.clone(),
                position: *position,
                body: text.clone(),
                user: user.to_owned(),
                commit_id: commit_id.to_owned(),
                created_at: now,
            })
            .collect();
        let stale = self
            .pulls
            .get(&pull)
            .is_some_and(|p| p.head_sha != commit_id);
        self.reviews.push(Review {
            id,
            pull,
            user: user.to_owned(),
            state: state.to_owned(),
            body: body.to_owned(),
            commit_id: commit_id.to_owned(),
            dismissed: false,
            stale,
            official,
            submitted_at: now,
            comments,
        });
        if let Some(i) = self.issues.get_mut(&pull) {
            i.updated_at = now;
        }
        id
    }
}
