//! GitHub's wire shapes of pull requests: pull-request (and pull-request-simple),
//! pull-request-review and pull-request-review-comment.

use serde_json::{Value, json};

use super::json::{PULL_ID_BASE, merge_into, opt_time, time};
use super::state::GithubState;
use crate::fake_forge::{Review, ReviewComment};

impl GithubState {
    fn branch_ref_json(&mut self, branch: &str, sha: &str) -> Value {
        let owner = self.forge.owner.clone();
        json!({
            "label": format!("{owner}:{branch}"),
            "ref": branch,
            "sha": sha,
            "user": self.user_json(&owner),
            "repo": self.repo_json(false),
        })
    }

    /// pull-request, or with `simple` the pull-request-simple of list answers (no
    /// mergeability, no counts). `mergeable` is what to show: `None` while computing.
    pub(crate) fn pull_json(&mut self, n: u64, simple: bool, mergeable: Option<bool>) -> Value {
        let pull = self.forge.pulls[&n].clone();
        let issue = self.forge.issue(n).clone();
        let api = format!("{}/pulls/{n}", self.api_repo_url());
        let issue_api = format!("{}/issues/{n}", self.api_repo_url());
        let html_url = format!("{}/pull/{n}", self.html_repo_url());
        let statuses_url = format!("{}/statuses/{}", self.api_repo_url(), pull.head_sha);
        let link = |href: &str| json!({ "href": href });
        let mut value = json!({
            "id": PULL_ID_BASE + n,
            "node_id": format!("PR_{n}"),
            "url": api,
            "html_url": html_url,
            "diff_url": format!("{html_url}.diff"),
            "patch_url": format!("{html_url}.patch"),
            "issue_url": issue_api,
            "commits_url": format!("{api}/commits"),
            "review_comments_url": format!("{api}/comments"),
            "review_comment_url": format!("{}/pulls/comments{{/number}}", self.api_repo_url()),
            "comments_url": format!("{issue_api}/comments"),
            "statuses_url": statuses_url,
            "number": n,
            "state": issue.state,
            "locked": false,
            "title": issue.title,
            "user": self.user_json(&issue.user),
            "body": issue.body,
            "labels": self.issue_labels_json(n),
            "milestone": null,
            "active_lock_reason": null,
            "created_at": time(issue.created_at),
            "updated_at": time(issue.updated_at),
            "closed_at": opt_time(issue.closed_at),
            "merged_at": opt_time(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": null,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self.branch_ref_json(&pull.head, &pull.head_sha),
            "base": self.branch_ref_json(&pull.base, &pull.base_sha),
            "_links": {
                "self": link(&api),
                "html": link(&html_url),
                "issue": link(&issue_api),
                "comments": link(&format!("{issue_api}/comments")),
                "review_comments": link(&format!("{api}/comments")),
                "review_comment": link(&format!("{}/pulls/comments{{/number}}", self.api_repo_url())),
                "commits": link(&format!("{api}/commits")),
                "statuses": link(&statuses_url),
            },
            "author_association": self.association(&issue.user),
            "auto_merge": null,
            "draft": false,
        });
        if simple {
            return value;
        }
        let merged_by = match &pull.merged_by {
            Some(login) => self.user_json(login),
            None => Value::Null,
        };
        let mergeable_state = match mergeable {
            _ if pull.merged || !issue.is_open() => "unknown",
            None => "unknown",
            Some(false) => "dirty",
            Some(true) if self.is_green(&pull.head_sha) => "clean",
            Some(true) => "unstable",
        };
        let review_comments: usize = self.forge.reviews(n).map(|r| r.comments.len()).sum();
        merge_into(
            &mut value,
            json!({
                "merged": pull.merged,
                "mergeable": mergeable,
                "rebaseable": mergeable,
                "mergeable_state": mergeable_state,
                "merged_by": merged_by,
                "comments": self.forge.comments(n).count(),
                "review_comments": review_comments,
                "maintainer_can_modify": false,
                "commits": 1,
                "additions": 1,
                "deletions": 1,
                "changed_files": 1,
            }),
        );
        value
    }

    /// pull-request-review: a dismissed review shows `DISMISSED`.
    pub(crate) fn review_json(&mut self, review: &Review) -> Value {
        let pr_api = format!("{}/pulls/{}", self.api_repo_url(), review.pull);
        let html = format!(
            "{}/pull/{}#pullrequestreview-{}",
            self.html_repo_url(),
            review.pull,
            review.id
        );
        let state = if review.dismissed {
            "DISMISSED"
        } else {
            review.state.as_str()
        };
        json!({
            "id": review.id,
            "node_id": format!("PRR_{}", review.id),
            "user": self.user_json(&review.user),
            "body": review.body,
            "state": state,
            "html_url": html,
            "pull_request_url": pr_api,
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_api}},
            "submitted_at": time(review.submitted_at),
            "commit_id": review.commit_id,
            "author_association": self.association(&review.user),
        })
    }

    /// pull-request-review-comment: the fake's `position` is the file line (`line`).
    pub(crate) fn review_comment_json(&mut self, review: &Review, c: &ReviewComment) -> Value {
        let pr_api = format!("{}/pulls/{}", self.api_repo_url(), review.pull);
        let url = format!("{}/pulls/comments/{}", self.api_repo_url(), c.id);
        let html = format!(
            "{}/pull/{}#discussion_r{}",
            self.html_repo_url(),
            review.pull,
            c.id
        );
        let link = |href: &str| json!({ "href": href });
        json!({
            "url": url,
            "id": c.id,
            "node_id": format!("PRRC_{}", c.id),
            "pull_request_review_id": review.id,
            "diff_hunk": format!("@@ -1,1 +1,{} @@", c.position),
            "path": c.path,
            "position": c.position,
            "original_position": c.position,
            "line": c.position,
            "original_line": c.position,
            "side": "RIGHT",
            "commit_id": c.commit_id,
            "original_commit_id": c.commit_id,
            "user": self.user_json(&c.user),
            "body": c.body,
            "created_at": time(c.created_at),
            "updated_at": time(c.created_at),
            "html_url": html,
            "pull_request_url": pr_api,
            "author_association": self.association(&c.user),
            "_links": {"self": link(&url), "html": link(&html), "pull_request": link(&pr_api)},
            "subject_type": "line",
        })
    }
}
