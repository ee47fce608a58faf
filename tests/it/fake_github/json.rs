//! GitHub's wire shapes (the description's `components/schemas`) built from the fake's
//! state: simple-user, private-user, label, issue, issue-comment, repository (full and
//! minimal), git-ref, branch-with-protection, repository-collaborator-permission,
//! rate-limit-overview; pull requests and reviews are in `pull_json.rs`, CI results in
//! `ci_json.rs`.
//!
//! Every required property is there (the fake checks its own answers against the
//! description, see `GithubState::shape_problems`); values a client could reasonably read
//! follow GitHub's conventions (colours without `#`, `null` for absent objects, RFC 3339
//! times, URLs under the fake's address), the rest are neutral.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::state::GithubState;
use crate::fake_forge::git::CommitInfo;
use crate::fake_forge::{Comment, Label};

/// Where the numbers of the different kinds of ids start, so an issue id is never taken
/// for a number (GitHub's ids are large and unrelated to numbers).
pub const ISSUE_ID_BASE: u64 = 1_000_000;
pub const PULL_ID_BASE: u64 = 2_000_000;
pub(super) const REPO_ID: u64 = 42;
pub(super) const CREATED: &str = "2020-01-01T00:00:00Z";

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(time(t)))
}

/// The repository URL fields (`archive_url`, `issues_url`, …) GitHub lists, all under the
/// repository's API URL.
const REPO_URL_FIELDS: [&str; 36] = [
    "archive",
    "assignees",
    "blobs",
    "branches",
    "collaborators",
    "comments",
    "commits",
    "compare",
    "contents",
    "contributors",
    "deployments",
    "downloads",
    "events",
    "forks",
    "git_commits",
    "git_refs",
    "git_tags",
    "hooks",
    "issue_comment",
    "issue_events",
    "issues",
    "keys",
    "labels",
    "languages",
    "merges",
    "milestones",
    "notifications",
    "pulls",
    "releases",
    "stargazers",
    "statuses",
    "subscribers",
    "subscription",
    "tags",
    "teams",
    "trees",
];

/// The user URL fields of simple-user.
const USER_URL_FIELDS: [&str; 9] = [
    "followers",
    "following",
    "gists",
    "starred",
    "subscriptions",
    "organizations",
    "repos",
    "events",
    "received_events",
];

impl GithubState {
    pub(crate) fn api_base(&self) -> String {
        format!("{}{}", self.forge.base_url, self.api_prefix)
    }

    pub(crate) fn api_repo_url(&self) -> String {
        format!(
            "{}/repos/{}/{}",
            self.api_base(),
            self.forge.owner,
            self.forge.repo
        )
    }

    pub(crate) fn html_repo_url(&self) -> String {
        format!(
            "{}/{}/{}",
            self.forge.base_url, self.forge.owner, self.forge.repo
        )
    }

    /// simple-user; logins ending in `[bot]` are of type `Bot`.
    pub(crate) fn user_json(&mut self, login: &str) -> Value {
        let id = self.forge.user_id(login);
        let url = format!("{}/users/{login}", self.api_base());
        let mut user = Map::new();
        for field in USER_URL_FIELDS {
            user.insert(format!("{field}_url"), json!(format!("{url}/{field}")));
        }
        let kind = if login.ends_with("[bot]") {
            "Bot"
        } else {
            "User"
        };
        for (k, v) in [
            ("login", json!(login)),
            ("id", json!(id)),
            ("node_id", json!(format!("U_{id}"))),
            (
                "avatar_url",
                json!(format!("{}/avatars/{login}", self.forge.base_url)),
            ),
            ("gravatar_id", json!("")),
            ("url", json!(url)),
            (
                "html_url",
                json!(format!("{}/{login}", self.forge.base_url)),
            ),
            ("type", json!(kind)),
            ("site_admin", json!(false)),
            ("user_view_type", json!("public")),
        ] {
            user.insert(k.to_owned(), v);
        }
        Value::Object(user)
    }

    /// private-user, what `GET /user` shows the token's own user.
    pub(crate) fn private_user_json(&mut self, login: &str) -> Value {
        let mut user = self.user_json(login);
        let extra = json!({
            "name": login, "company": null, "blog": "", "location": null, "email": null,
            "hireable": null, "bio": null, "public_repos": 1, "public_gists": 0,
            "followers": 0, "following": 0, "created_at": CREATED, "updated_at": CREATED,
            "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
            "disk_usage": 0, "collaborators": 0, "two_factor_authentication": true,
            "user_view_type": "private",
        });
        merge_into(&mut user, extra);
        user
    }

    /// How `login` is associated with the repository, from its permission.
    pub(crate) fn association(&self, login: &str) -> &'static str {
        if login.eq_ignore_ascii_case(&self.forge.owner) {
            return "OWNER";
        }
        match self.forge.permissions.get(login).map(String::as_str) {
            Some("none") | None => "NONE",
            Some(_) => "COLLABORATOR",
        }
    }

    pub(crate) fn label_json(&self, label: &Label) -> Value {
        json!({
            "id": label.id,
            "node_id": format!("LA_{}", label.id),
            "url": format!("{}/labels/{}", self.api_repo_url(), crate::fake_server::encode(&label.name)),
            "name": label.name,
            "description": if label.description.is_empty() { Value::Null } else { json!(label.description) },
            "color": label.color,
            "default": false,
        })
    }

    pub(crate) fn issue_labels_json(&self, n: u64) -> Vec<Value> {
        self.forge
            .try_issue(n)
            .map(|i| i.labels.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|name| self.forge.label_by_name(name))
            .map(|l| self.label_json(l))
            .collect()
    }

    /// issue; a PR's issue carries the `pull_request` key, as on GitHub.
    pub(crate) fn issue_json(&mut self, n: u64) -> Value {
        let issue = self.forge.issue(n).clone();
        let api = format!("{}/issues/{n}", self.api_repo_url());
        let kind = if issue.is_pull { "pull" } else { "issues" };
        let html_url = format!("{}/{kind}/{n}", self.html_repo_url());
        let pull_request = self.forge.pulls.get(&n).map(|p| {
            json!({
                "url": format!("{}/pulls/{n}", self.api_repo_url()),
                "html_url": html_url,
                "diff_url": format!("{html_url}.diff"),
                "patch_url": format!("{html_url}.patch"),
                "merged_at": opt_time(p.merged_at),
            })
        });
        let blocked_by = issue.depends_on.len();
        let blocking = self
            .forge
            .issues()
            .filter(|i| i.depends_on.contains(&n))
            .count();
        let open_blockers = issue
            .depends_on
            .iter()
            .filter(|b| self.forge.try_issue(**b).is_some_and(|i| i.is_open()))
            .count();
        let comments = self.forge.comments(n).count();
        let state_reason = match issue.state.as_str() {
            "closed" => json!("completed"),
            _ => Value::Null,
        };
        let mut value = json!({
            "id": ISSUE_ID_BASE + n,
            "node_id": format!("I_{n}"),
            "url": api,
            "repository_url": self.api_repo_url(),
            "labels_url": format!("{api}/labels{{/name}}"),
            "comments_url": format!("{api}/comments"),
            "events_url": format!("{api}/events"),
            "html_url": html_url,
            "number": n,
            "state": issue.state,
            "state_reason": state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user_json(&issue.user),
            "labels": self.issue_labels_json(n),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": comments,
            "closed_at": opt_time(issue.closed_at),
            "created_at": time(issue.created_at),
            "updated_at": time(issue.updated_at),
            "closed_by": null,
            "author_association": self.association(&issue.user),
            "issue_dependencies_summary": {
                "blocked_by": open_blockers,
                "blocking": blocking,
                "total_blocked_by": blocked_by,
                "total_blocking": blocking,
            },
        });
        if let Some(pr) = pull_request {
            value["pull_request"] = pr;
            value["draft"] = json!(false);
        }
        value
    }

    pub(crate) fn comment_json(&mut self, comment: &Comment) -> Value {
        let issue_url = format!("{}/issues/{}", self.api_repo_url(), comment.issue);
        let kind = if self.forge.pulls.contains_key(&comment.issue) {
            "pull"
        } else {
            "issues"
        };
        json!({
            "id": comment.id,
            "node_id": format!("IC_{}", comment.id),
            "url": format!("{}/issues/comments/{}", self.api_repo_url(), comment.id),
            "html_url": format!("{}/{kind}/{}#issuecomment-{}", self.html_repo_url(), comment.issue, comment.id),
            "body": comment.body,
            "user": self.user_json(&comment.user),
            "created_at": time(comment.created_at),
            "updated_at": time(comment.created_at),
            "issue_url": issue_url,
            "author_association": self.association(&comment.user),
        })
    }

    /// repository (in PR heads and bases), or with `full` the full-repository of
    /// `GET /repos/{owner}/{repo}`.
    pub(crate) fn repo_json(&mut self, full: bool) -> Value {
        let api = self.api_repo_url();
        let html = self.html_repo_url();
        let owner = self.forge.owner.clone();
        let mut repo = Map::new();
        for field in REPO_URL_FIELDS {
            repo.insert(format!("{field}_url"), json!(format!("{api}/{field}")));
        }
        let open = self.forge.issues().filter(|i| i.is_open()).count();
        let extra = json!({
            "id": REPO_ID,
            "node_id": format!("R_{REPO_ID}"),
            "name": self.forge.repo,
            "full_name": format!("{}/{}", owner, self.forge.repo),
            "owner": self.user_json(&owner),
            "private": false,
            "html_url": html,
            "description": null,
            "fork": false,
            "url": api,
            "clone_url": format!("{html}.git"),
            "git_url": format!("git://127.0.0.1/{}/{}.git", owner, self.forge.repo),
            "ssh_url": format!("git@127.0.0.1:{}/{}.git", owner, self.forge.repo),
            "svn_url": html,
            "mirror_url": null,
            "homepage": null,
            "language": "Rust",
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "size": 1,
        });
        // Two literals: one would pass `json!`'s recursion limit.
        let settings = json!({
            "default_branch": self.forge.default_branch,
            "open_issues": open,
            "open_issues_count": open,
            "has_issues": true,
            "has_projects": false,
            "has_wiki": false,
            "has_pages": false,
            "has_downloads": false,
            "has_discussions": false,
            "archived": false,
            "disabled": false,
            "license": null,
            "pushed_at": CREATED,
            "created_at": CREATED,
            "updated_at": CREATED,
            "visibility": "public",
            "allow_merge_commit": true,
            "allow_squash_merge": true,
            "allow_rebase_merge": true,
            "delete_branch_on_merge": self.delete_branch_on_merge,
            "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true},
        });
        let mut value = Value::Object(repo);
        merge_into(&mut value, extra);
        merge_into(&mut value, settings);
        if full {
            merge_into(
                &mut value,
                json!({"network_count": 0, "subscribers_count": 0}),
            );
        }
        value
    }

    /// minimal-repository (check suites, workflow runs, combined statuses).
    pub(crate) fn minimal_repo_json(&mut self) -> Value {
        let mut repo = self.repo_json(false);
        if let Some(object) = repo.as_object_mut() {
            // The merge settings are the repository's, not the minimal view's.
            object.retain(|k, _| !k.starts_with("allow_"));
        }
        repo
    }

    pub(crate) fn full_repo_json(&mut self) -> Value {
        self.repo_json(true)
    }

    pub(crate) fn git_ref_json(&self, reference: &str, sha: &str) -> Value {
        json!({
            "ref": reference,
            "node_id": format!("REF_{}", crate::fake_server::encode(reference)),
            "url": format!("{}/git/{reference}", self.api_repo_url()),
            "object": {
                "type": "commit",
                "sha": sha,
                "url": format!("{}/git/commits/{sha}", self.api_repo_url()),
            },
        })
    }

    /// branch-with-protection for `GET /branches/{branch}`.
    pub(crate) fn branch_json(&mut self, name: &str, info: &CommitInfo) -> Value {
        let author = self.user_json(&self.forge.owner.clone());
        let commit_url = format!("{}/commits/{}", self.api_repo_url(), info.sha);
        let person =
            json!({"name": info.author_name, "email": info.author_email, "date": info.timestamp});
        let branch_url = format!("{}/branches/{name}", self.api_repo_url());
        json!({
            "name": name,
            "commit": {
                "url": commit_url,
                "sha": info.sha,
                "node_id": format!("C_{}", info.sha),
                "html_url": format!("{}/commit/{}", self.html_repo_url(), info.sha),
                "comments_url": format!("{commit_url}/comments"),
                "commit": {
                    "url": format!("{}/git/commits/{}", self.api_repo_url(), info.sha),
                    "author": person,
                    "committer": person,
                    "message": info.message,
                    "comment_count": 0,
                    "tree": {"sha": info.sha, "url": format!("{}/git/trees/{}", self.api_repo_url(), info.sha)},
                },
                "author": author,
                "committer": author,
                "parents": [],
            },
            "_links": {"html": format!("{}/tree/{name}", self.html_repo_url()), "self": branch_url},
            "protected": false,
            "protection": {"enabled": false},
            "protection_url": format!("{branch_url}/protection"),
        })
    }

    pub(crate) fn permission_json(&mut self, login: &str) -> Value {
        let role = self.forge.permission(login).to_owned();
        let role = if role == "owner" {
            "admin".to_owned()
        } else {
            role
        };
        // The legacy `permission` field folds maintain into write and triage into read.
        let permission = match role.as_str() {
            "admin" => "admin",
            "maintain" | "write" => "write",
            "triage" | "read" => "read",
            _ => "none",
        };
        let mut user = self.user_json(login);
        merge_into(
            &mut user,
            json!({
                "role_name": role,
                "permissions": {
                    "admin": permission == "admin",
                    "maintain": role == "maintain" || permission == "admin",
                    "push": matches!(permission, "admin" | "write"),
                    "triage": permission != "none",
                    "pull": permission != "none",
                },
            }),
        );
        json!({"permission": permission, "role_name": role, "user": user})
    }

    pub(crate) fn rate_limit_json(&self) -> Value {
        let rate = json!({
            "limit": self.rate.limit,
            "remaining": self.rate.remaining,
            "reset": self.rate.reset.timestamp(),
            "used": self.rate.used,
        });
        let other =
            json!({"limit": 30, "remaining": 30, "reset": self.rate.reset.timestamp(), "used": 0});
        json!({
            "resources": {"core": rate, "search": other, "graphql": other},
            "rate": rate,
        })
    }
}

/// Adds `extra`'s fields to the object `value`.
pub(super) fn merge_into(value: &mut Value, extra: Value) {
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), extra) {
        object.extend(extra);
    }
}
