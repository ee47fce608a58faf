//! The Forgejo wire shapes (swagger `definitions`) built from the fake's state: User,
//! Label, Issue, Comment, PullRequest, PullReview, PullReviewComment, CommitStatus,
//! CombinedStatus, Branch and the APIError body.
//!
//! Fields a client could reasonably read are filled in with Forgejo's conventions (colors
//! without `#`, `null` for absent objects, RFC 3339 times); the rest carry neutral values.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::git::CommitInfo;
use super::state::{Comment, CommitStatus, ForgeState, Issue, Label, Pull, Review, ReviewComment};

/// Forgejo's zero time, used where an account never logged in.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(time(t)))
}

/// `{"message": …, "url": …}`, what Forgejo sends with 4xx answers.
pub fn error(base_url: &str, message: &str) -> Value {
    json!({ "message": message, "url": format!("{base_url}/api/swagger") })
}

impl ForgeState {
    fn api_repo_url(&self) -> String {
        format!(
            "{}/api/v1/repos/{}/{}",
            self.base_url, self.owner, self.repo
        )
    }

    fn html_repo_url(&self) -> String {
        format!("{}/{}/{}", self.base_url, self.owner, self.repo)
    }

    pub(super) fn user_json(&mut self, login: &str) -> Value {
        let id = self.user_id(login);
        json!({
            "id": id,
            "login": login,
            "login_name": "",
            "source_id": 0,
            "full_name": "",
            "email": format!("{login}@noreply.localhost"),
            "avatar_url": format!("{}/avatars/{login}", self.base_url),
            "html_url": format!("{}/{login}", self.base_url),
            "language": "",
            "is_admin": false,
            "last_login": ZERO_TIME,
            "created": ZERO_TIME,
            "restricted": false,
            "active": true,
            "prohibit_login": false,
            "location": "",
            "pronouns": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
        })
    }

    pub(super) fn label_json(&self, label: &Label) -> Value {
        json!({
            "id": label.id,
            "name": label.name,
            "exclusive": false,
            "is_archived": false,
            "color": label.color,
            "description": label.description,
            "url": format!("{}/labels/{}", self.api_repo_url(), label.id),
        })
    }

    fn issue_labels_json(&self, issue: &Issue) -> Vec<Value> {
        issue
            .labels
            .iter()
            .filter_map(|name| self.label_by_name(name))
            .map(|l| self.label_json(l))
            .collect()
    }

    pub(super) fn repo_json(&mut self) -> Value {
        let owner = self.owner.clone();
        json!({
            "id": 1,
            "owner": self.user_json(&owner),
            "name": self.repo,
            "full_name": format!("{}/{}", self.owner, self.repo),
            "description": "",
            "empty": false,
            "private": false,
            "fork": false,
            "template": false,
            "parent": null,
            "mirror": false,
            "size": 0,
            "html_url": self.html_repo_url(),
            "url": self.api_repo_url(),
            "link": "",
            "ssh_url": format!("git@127.0.0.1:{}/{}.git", self.owner, self.repo),
            "clone_url": format!("{}.git", self.html_repo_url()),
            "default_branch": self.default_branch,
            "archived": false,
            "has_issues": true,
            "has_pull_requests": true,
            "allow_merge_commits": true,
            "allow_rebase": true,
            "allow_squash_merge": true,
            "allow_fast_forward_only_merge": true,
            "default_merge_style": "merge",
            "default_delete_branch_after_merge": false,
            "permissions": { "admin": false, "push": true, "pull": true },
        })
    }

    pub(super) fn issue_json(&mut self, n: u64) -> Value {
        let issue = self.issues[&n].clone();
        let kind = if issue.is_pull { "pulls" } else { "issues" };
        let html_url = format!("{}/{kind}/{n}", self.html_repo_url());
        let pull_request = match self.pulls.get(&n) {
            Some(p) => json!({
                "merged": p.merged,
                "merged_at": opt_time(p.merged_at),
                "draft": false,
                "html_url": html_url,
            }),
            None => Value::Null,
        };
        let comments = self.comments(n).count();
        json!({
            "id": 1000 + n,
            "url": format!("{}/issues/{n}", self.api_repo_url()),
            "html_url": html_url,
            "number": n,
            "user": self.user_json(&issue.user),
            "original_author": "",
            "original_author_id": 0,
            "title": issue.title,
            "body": issue.body,
            "ref": "",
            "assets": [],
            "labels": self.issue_labels_json(&issue),
            "milestone": null,
            "assignee": null,
            "assignees": null,
            "state": issue.state,
            "is_locked": false,
            "comments": comments,
            "created_at": time(issue.created_at),
            "updated_at": time(issue.updated_at),
            "closed_at": opt_time(issue.closed_at),
            "due_date": null,
            "pull_request": pull_request,
            "repository": {
                "id": 1,
                "name": self.repo,
                "owner": self.owner,
                "full_name": format!("{}/{}", self.owner, self.repo),
            },
            "pin_order": 0,
        })
    }

    pub(super) fn comment_json(&mut self, comment: &Comment) -> Value {
        let issue = self.issue_json(comment.issue);
        let is_pull = self.pulls.contains_key(&comment.issue);
        json!({
            "id": comment.id,
            "html_url": format!("{}#issuecomment-{}", issue["html_url"].as_str().unwrap_or_default(), comment.id),
            "pull_request_url": if is_pull { issue["html_url"].clone() } else { json!("") },
            "issue_url": if is_pull { json!("") } else { issue["html_url"].clone() },
            "user": self.user_json(&comment.user),
            "original_author": "",
            "original_author_id": 0,
            "body": comment.body,
            "assets": [],
            "created_at": time(comment.created_at),
            "updated_at": time(comment.created_at),
        })
    }

    fn branch_info_json(&mut self, branch: &str, sha: &str) -> Value {
        json!({
            "label": branch,
            "ref": branch,
            "sha": sha,
            "repo_id": 1,
            "repo": self.repo_json(),
        })
    }

    pub(super) fn pull_json(&mut self, n: u64) -> Value {
        let pull: Pull = self.pulls[&n].clone();
        let issue = self.issues[&n].clone();
        let html_url = format!("{}/pulls/{n}", self.html_repo_url());
        let merged_by = match &pull.merged_by {
            Some(login) => self.user_json(login),
            None => Value::Null,
        };
        let review_comments: usize = self.reviews(n).map(|r| r.comments.len()).sum();
        let comments = self.comments(n).count();
        json!({
            "id": 2000 + n,
            "url": format!("{}/pulls/{n}", self.api_repo_url()),
            "number": n,
            "user": self.user_json(&issue.user),
            "title": issue.title,
            "body": issue.body,
            "labels": self.issue_labels_json(&issue),
            "milestone": null,
            "assignee": null,
            "assignees": null,
            "requested_reviewers": null,
            "requested_reviewers_teams": null,
            "state": issue.state,
            "draft": false,
            "is_locked": false,
            "comments": comments,
            "review_comments": review_comments,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
            "html_url": html_url,
            "diff_url": format!("{html_url}.diff"),
            "patch_url": format!("{html_url}.patch"),
            "mergeable": pull.mergeable && !pull.merged,
            "merged": pull.merged,
            "merged_at": opt_time(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "merged_by": merged_by,
            "allow_maintainer_edit": false,
            "base": self.branch_info_json(&pull.base, &pull.base_sha),
            "head": self.branch_info_json(&pull.head, &pull.head_sha),
            "merge_base": pull.base_sha,
            "due_date": null,
            "created_at": time(issue.created_at),
            "updated_at": time(issue.updated_at),
            "closed_at": opt_time(issue.closed_at),
            "pin_order": 0,
            "flow": 0,
        })
    }

    pub(super) fn review_json(&mut self, review: &Review) -> Value {
        let pr_url = format!("{}/pulls/{}", self.html_repo_url(), review.pull);
        json!({
            "id": review.id,
            "user": self.user_json(&review.user),
            "team": null,
            "state": review.state,
            "body": review.body,
            "commit_id": review.commit_id,
            "stale": review.stale,
            "official": review.official,
            "dismissed": review.dismissed,
            "comments_count": review.comments.len(),
            "submitted_at": time(review.submitted_at),
            "updated_at": time(review.submitted_at),
            "html_url": format!("{pr_url}#issuecomment-{}", review.id),
            "pull_request_url": pr_url,
        })
    }

    /// `RepoCollaboratorPermission`: Forgejo names the role after the access mode.
    pub(super) fn permission_json(&mut self, login: &str) -> Value {
        let permission = self.permission(login).to_owned();
        json!({
            "permission": permission,
            "role_name": permission,
            "user": self.user_json(login),
        })
    }

    pub(super) fn review_comment_json(&mut self, review: &Review, c: &ReviewComment) -> Value {
        let pr_url = format!("{}/pulls/{}", self.html_repo_url(), review.pull);
        json!({
            "id": c.id,
            "body": c.body,
            "user": self.user_json(&c.user),
            "resolver": null,
            "pull_request_review_id": review.id,
            "created_at": time(c.created_at),
            "updated_at": time(c.created_at),
            "path": c.path,
            "commit_id": c.commit_id,
            "original_commit_id": c.commit_id,
            "diff_hunk": "",
            "position": c.position,
            "original_position": c.position,
            "html_url": format!("{pr_url}/files#issuecomment-{}", c.id),
            "pull_request_url": pr_url,
        })
    }

    pub(super) fn status_json(&mut self, s: &CommitStatus) -> Value {
        json!({
            "id": s.id,
            "status": s.state,
            "target_url": s.target_url,
            "description": s.description,
            "url": format!("{}/statuses/{}", self.api_repo_url(), s.sha),
            "context": s.context,
            "creator": self.user_json(&s.creator),
            "created_at": time(s.created_at),
            "updated_at": time(s.created_at),
        })
    }

    /// Forgejo answers an empty `CombinedStatus{}` (state `""`, statuses `null`) when a
    /// commit has no statuses at all; clients must cope with that.
    pub(super) fn combined_json(&mut self, sha: &str) -> Value {
        let latest: Vec<CommitStatus> = self.latest_statuses(sha).into_iter().cloned().collect();
        if latest.is_empty() {
            return json!({
                "state": "",
                "sha": "",
                "total_count": 0,
                "statuses": null,
                "repository": null,
                "commit_url": "",
                "url": "",
            });
        }
        let statuses: Vec<Value> = latest.iter().map(|s| self.status_json(s)).collect();
        json!({
            "state": self.combined_state(sha),
            "sha": sha,
            "total_count": statuses.len(),
            "statuses": statuses,
            "repository": self.repo_json(),
            "commit_url": format!("{}/git/commits/{sha}", self.api_repo_url()),
            "url": format!("{}/commits/{sha}/status", self.api_repo_url()),
        })
    }

    pub(super) fn branch_json(&self, name: &str, commit: &CommitInfo) -> Value {
        let person = |n: &str, e: &str| json!({ "name": n, "email": e, "username": "" });
        json!({
            "name": name,
            "commit": {
                "id": commit.sha,
                "message": commit.message,
                "url": format!("{}/commit/{}", self.html_repo_url(), commit.sha),
                "author": person(&commit.author_name, &commit.author_email),
                "committer": person(&commit.author_name, &commit.author_email),
                "verification": null,
                "timestamp": commit.timestamp,
                "added": null,
                "removed": null,
                "modified": null,
            },
            "protected": false,
            "required_approvals": 0,
            "enable_status_check": false,
            "status_check_contexts": [],
            "user_can_push": true,
            "user_can_merge": true,
            "effective_branch_protection_name": "",
        })
    }
}
