//! Handlers for pull requests, reviews and review comments, GitHub's merge, branches and
//! git refs: the parts backed by the real bare repository.
//!
//! The merge follows GitHub: `merge_method` `merge` always makes a merge commit,
//! `squash` one commit on the base, `rebase` a fast-forward when the base has not moved
//! (else one rebased commit: GitHub replays each commit, the fake squashes them);
//! `sha` not the head → 409; not mergeable, closed or already merged → 405.

use chrono::Utc;
use serde_json::{Value, json};

use super::behaviour::settle;
use super::paging::paginate;
use super::routes::{Reply, Req};
use super::state::GithubState;
use crate::fake_forge::behaviour::referenced_issues;
use crate::fake_forge::{MergeRecord, Pull, ViolationKind};

type Handled = Result<Reply, Reply>;

fn not_found() -> Reply {
    Reply::error(404, "Not Found")
}

/// `GET /pulls`: `state`, `head` (`owner:branch`), `base`, `sort`, `direction`;
/// pull-request-simple, so no mergeability (that needs a read of the PR itself).
pub fn list_pulls(state: &mut GithubState, req: &Req) -> Handled {
    let wanted = req.q("state").unwrap_or("open");
    let head = req.q("head").map(|h| match h.split_once(':') {
        Some((_, branch)) => branch.to_owned(),
        None => h.to_owned(),
    });
    let mut numbers: Vec<(u64, chrono::DateTime<Utc>, chrono::DateTime<Utc>)> = state
        .forge
        .pulls()
        .map(|p| (p, state.forge.issue(p.number)))
        .filter(|(_, i)| wanted == "all" || i.state == wanted)
        .filter(|(p, _)| head.as_ref().is_none_or(|h| *h == p.head))
        .filter(|(p, _)| req.q("base").is_none_or(|b| b == p.base))
        .map(|(p, i)| (p.number, i.created_at, i.updated_at))
        .collect();
    match req.q("sort").unwrap_or("created") {
        "updated" => numbers.sort_by_key(|(n, _, updated)| (*updated, *n)),
        _ => numbers.sort_by_key(|(n, created, _)| (*created, *n)),
    }
    if req.q("direction").unwrap_or("desc") == "desc" {
        numbers.reverse();
    }
    let json = numbers
        .into_iter()
        .map(|(n, _, _)| state.pull_json(n, true, None))
        .collect();
    Ok(paginate(state, req, json))
}

/// POST `{head, base, title, body, draft}`: the head branch must exist and be ahead.
pub fn create_pull(state: &mut GithubState, req: &Req) -> Handled {
    let head_field = req.str_field("head").unwrap_or_default();
    let head = match head_field.split_once(':') {
        Some((owner, branch)) if owner.eq_ignore_ascii_case(&state.forge.owner) => branch,
        Some(_) => return Err(Reply::invalid("PullRequest", "head", "invalid", None)),
        None => head_field,
    }
    .to_owned();
    let base = req.str_field("base").unwrap_or_default().to_owned();
    let title = req.str_field("title").unwrap_or_default().to_owned();
    if title.trim().is_empty() {
        return Err(Reply::invalid(
            "PullRequest",
            "title",
            "missing_field",
            None,
        ));
    }
    let Some(base_sha) = state.forge.git.branch_sha(&base) else {
        return Err(Reply::invalid("PullRequest", "base", "invalid", None));
    };
    let Some(head_sha) = state.forge.git.branch_sha(&head) else {
        return Err(Reply::invalid("PullRequest", "head", "invalid", None));
    };
    if state
        .forge
        .git
        .is_ancestor(&head_sha, &base_sha)
        .unwrap_or(false)
    {
        let message = format!("No commits between {base} and {head}");
        return Err(Reply::invalid(
            "PullRequest",
            "head",
            "custom",
            Some(&message),
        ));
    }
    let owner = state.forge.owner.clone();
    if state
        .forge
        .pulls()
        .any(|p| p.head == head && p.base == base && state.forge.issue(p.number).is_open())
    {
        let message = format!("A pull request already exists for {owner}:{head}.");
        return Err(Reply::invalid(
            "PullRequest",
            "head",
            "custom",
            Some(&message),
        ));
    }
    let n = state.forge.new_issue(
        &title,
        req.str_field("body").unwrap_or_default(),
        &req.caller.login,
        true,
    );
    state.forge.pulls.insert(n, Pull::new(n, head, base));
    // Reads the head from git and lets the simulated CI see it, before answering.
    settle(state);
    // GitHub starts computing mergeability now: the creation answer has none yet.
    let pending = state.mergeable_pending(n, false);
    let mergeable = (!pending).then(|| state.forge.pulls[&n].mergeable);
    Ok(Reply::json(201, state.pull_json(n, false, mergeable)))
}

fn existing_pull(state: &GithubState, req: &Req) -> Result<u64, Reply> {
    let n = req.number("pull_number")?;
    state
        .forge
        .pulls
        .contains_key(&n)
        .then_some(n)
        .ok_or_else(not_found)
}

/// A read of the PR: `mergeable` is null while GitHub "computes" it.
pub fn get_pull(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let pending = state.mergeable_pending(n, true);
    let pull = &state.forge.pulls[&n];
    // A merged PR has nothing left to merge: GitHub shows null there too.
    let mergeable = (!pending && !pull.merged).then_some(pull.mergeable);
    Ok(Reply::json(200, state.pull_json(n, false, mergeable)))
}

/// PATCH `{title, body, state, base}`.
pub fn edit_pull(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    if let Some(new_state) = req.str_field("state") {
        if new_state == "open" && state.forge.pulls[&n].merged {
            return Err(Reply::invalid(
                "PullRequest",
                "state",
                "invalid",
                Some("merged pull requests cannot be reopened"),
            ));
        }
        state.forge.set_issue_state(n, new_state);
    }
    if let Some(base) = req.str_field("base") {
        if state.forge.git.branch_sha(base).is_none() {
            return Err(Reply::invalid("PullRequest", "base", "invalid", None));
        }
        state.forge.pulls.get_mut(&n).expect("pull exists").base = base.to_owned();
    }
    let issue = state.forge.issues.get_mut(&n).expect("pull has an issue");
    if let Some(title) = req.str_field("title") {
        issue.title = title.to_owned();
    }
    if let Some(body) = req.str_field("body") {
        issue.body = body.to_owned();
    }
    issue.updated_at = Utc::now();
    settle(state);
    let pending = state.mergeable_pending(n, false);
    let mergeable = (!pending).then(|| state.forge.pulls[&n].mergeable);
    Ok(Reply::json(200, state.pull_json(n, false, mergeable)))
}

pub fn list_reviews(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let reviews: Vec<_> = state.forge.reviews(n).cloned().collect();
    let json = reviews.iter().map(|r| state.review_json(r)).collect();
    Ok(paginate(state, req, json))
}

pub fn review_comments(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let id = req.number("review_id")?;
    let review = state
        .forge
        .reviews(n)
        .find(|r| r.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    let json = review
        .comments
        .iter()
        .map(|c| state.review_comment_json(&review, c))
        .collect();
    Ok(paginate(state, req, json))
}

/// Every review comment of the PR, oldest first.
pub fn pull_comments(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let reviews: Vec<_> = state.forge.reviews(n).cloned().collect();
    let json = reviews
        .iter()
        .flat_map(|r| r.comments.iter().map(move |c| (r, c)))
        .map(|(r, c)| state.review_comment_json(r, c))
        .collect();
    Ok(paginate(state, req, json))
}

/// `GET …/merge`: 204 when merged, 404 when not.
pub fn is_merged(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    if state.forge.pulls[&n].merged {
        Ok(Reply::empty(204))
    } else {
        Err(Reply::empty(404))
    }
}

fn not_allowed(message: &str) -> Reply {
    Reply::error(405, message)
}

/// PUT `{sha, merge_method, commit_title, commit_message}`.
pub fn merge(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let pull = state.forge.pulls[&n].clone();
    let issue = state.forge.issue(n).clone();
    if pull.merged || !issue.is_open() {
        return Err(not_allowed("Pull Request is not mergeable"));
    }
    if let Some(expected) = req.str_field("sha")
        && expected != pull.head_sha
    {
        return Err(Reply::error(
            409,
            "Head branch was modified. Review and try the merge again.",
        ));
    }
    if req.str_field("sha").is_none() {
        state.forge.violation(
            ViolationKind::Suspicious,
            req.method,
            req.path,
            "merge without `sha`: a push between the last look and the merge would be merged unseen",
        );
    }
    let method = req.str_field("merge_method").unwrap_or("merge").to_owned();
    let title = req.str_field("commit_title").map_or_else(
        || match method.as_str() {
            "squash" => format!("{} (#{n})", issue.title),
            _ => format!(
                "Merge pull request #{n} from {}/{}",
                state.forge.owner, pull.head
            ),
        },
        str::to_owned,
    );
    let message = match req.str_field("commit_message").filter(|m| !m.is_empty()) {
        Some(body) => format!("{title}\n\n{body}"),
        None => title,
    };
    let Some(new_base) = git_merge(state, &pull, &method, &message)? else {
        state
            .forge
            .pulls
            .get_mut(&n)
            .expect("pull exists")
            .mergeable = false;
        return Err(not_allowed("Pull Request is not mergeable"));
    };
    let now = Utc::now();
    let p = state.forge.pulls.get_mut(&n).expect("pull exists");
    p.merged = true;
    p.merged_at = Some(now);
    p.merged_by = Some(req.caller.login.clone());
    p.merge_commit_sha = Some(new_base.clone());
    state.forge.set_issue_state(n, "closed");
    state.forge.merges.push(MergeRecord {
        pull: n,
        style: method,
        head_sha: pull.head_sha.clone(),
        base_before: pull.base_sha.clone(),
        base_after: new_base.clone(),
        at: now,
    });
    if state.delete_branch_on_merge {
        // GitHub merges first and deletes after; a failed delete does not undo the merge.
        let _ = state.forge.git.delete_branch(&pull.head);
    }
    if state.behaviour.close_referenced_issues_on_merge {
        for referenced in referenced_issues(&issue.body) {
            state.forge.set_issue_state(referenced, "closed");
        }
    }
    Ok(Reply::json(
        200,
        json!({"sha": new_base, "merged": true, "message": "Pull Request successfully merged"}),
    ))
}

/// Makes the merge in the bare repository; `None` on a conflict.
fn git_merge(
    state: &GithubState,
    pull: &Pull,
    method: &str,
    message: &str,
) -> Result<Option<String>, Reply> {
    let git = &state.forge.git;
    let internal = |e: anyhow::Error| Reply::error(500, format!("{e:#}"));
    let (base, head) = (pull.base_sha.as_str(), pull.head_sha.as_str());
    let new_base = if method == "rebase" && git.is_ancestor(base, head).map_err(internal)? {
        head.to_owned()
    } else {
        let Some(tree) = git.merge_tree(base, head).map_err(internal)? else {
            return Ok(None);
        };
        let mut args = vec!["commit-tree", tree.as_str(), "-p", base];
        if method == "merge" {
            args.extend(["-p", head]);
        }
        args.extend(["-m", message]);
        git.run(&args).map_err(internal)?
    };
    let reference = format!("refs/heads/{}", pull.base);
    // The old value guards against a push to the base racing the merge.
    git.run(&["update-ref", &reference, &new_base, base])
        .map_err(internal)?;
    Ok(Some(new_base))
}

pub fn get_branch(state: &mut GithubState, req: &Req) -> Handled {
    let name = req.param("branch").to_owned();
    let sha = state
        .forge
        .git
        .branch_sha(&name)
        .ok_or_else(|| Reply::error(404, "Branch not found"))?;
    let info = state
        .forge
        .git
        .commit_info(&sha)
        .map_err(|e| Reply::error(500, format!("{e:#}")))?;
    Ok(Reply::json(200, state.branch_json(&name, &info)))
}

/// `heads/<branch>` → the branch; other refs (tags) are not modelled.
fn branch_of_ref(reference: &str) -> Option<&str> {
    reference
        .trim_start_matches("refs/")
        .strip_prefix("heads/")
        .filter(|b| !b.is_empty())
}

pub fn get_ref(state: &mut GithubState, req: &Req) -> Handled {
    let branch = branch_of_ref(req.param("ref")).ok_or_else(not_found)?;
    let sha = state.forge.git.branch_sha(branch).ok_or_else(not_found)?;
    Ok(Reply::json(
        200,
        state.git_ref_json(&format!("refs/heads/{branch}"), &sha),
    ))
}

/// POST `{ref: "refs/heads/x", sha}`.
pub fn create_ref(state: &mut GithubState, req: &Req) -> Handled {
    let reference = req.str_field("ref").unwrap_or_default();
    let sha = req.str_field("sha").unwrap_or_default().to_owned();
    let Some(branch) = reference
        .strip_prefix("refs/heads/")
        .filter(|b| !b.is_empty())
    else {
        return Err(Reply::invalid(
            "Reference",
            "ref",
            "invalid",
            Some("ref must start with refs/heads/ and name a branch"),
        ));
    };
    if state.forge.git.branch_sha(branch).is_some() {
        return Err(Reply::invalid(
            "Reference",
            "ref",
            "already_exists",
            Some("Reference already exists"),
        ));
    }
    state
        .forge
        .git
        .run(&["update-ref", &format!("refs/heads/{branch}"), &sha, ""])
        .map_err(|_| {
            Reply::invalid("Reference", "sha", "invalid", Some("Object does not exist"))
        })?;
    Ok(Reply::json(201, state.git_ref_json(reference, &sha)))
}

/// PATCH `{sha, force}`: a non-fast-forward needs `force`.
pub fn update_ref(state: &mut GithubState, req: &Req) -> Handled {
    let branch = branch_of_ref(req.param("ref"))
        .ok_or_else(not_found)?
        .to_owned();
    let old = state.forge.git.branch_sha(&branch).ok_or_else(not_found)?;
    let sha = req.str_field("sha").unwrap_or_default().to_owned();
    let force = req.body.get("force").and_then(Value::as_bool) == Some(true);
    if !force && !state.forge.git.is_ancestor(&old, &sha).unwrap_or(false) {
        return Err(Reply::invalid(
            "Reference",
            "sha",
            "custom",
            Some("Update is not a fast forward"),
        ));
    }
    state
        .forge
        .git
        .run(&["update-ref", &format!("refs/heads/{branch}"), &sha, &old])
        .map_err(|_| {
            Reply::invalid("Reference", "sha", "invalid", Some("Object does not exist"))
        })?;
    Ok(Reply::json(
        200,
        state.git_ref_json(&format!("refs/heads/{branch}"), &sha),
    ))
}

/// `DELETE /git/refs/heads/<branch>`: deletes the branch in the bare repository; 422
/// "Reference does not exist" when it is gone already (as after an auto-delete).
pub fn delete_ref(state: &mut GithubState, req: &Req) -> Handled {
    let branch = branch_of_ref(req.param("ref"))
        .ok_or_else(|| {
            Reply::invalid(
                "Reference",
                "ref",
                "invalid",
                Some("Reference does not exist"),
            )
        })?
        .to_owned();
    if state.forge.git.branch_sha(&branch).is_none() {
        return Err(Reply::invalid(
            "Reference",
            "ref",
            "invalid",
            Some("Reference does not exist"),
        ));
    }
    if branch == state.forge.default_branch {
        return Err(Reply::invalid(
            "Reference",
            "ref",
            "invalid",
            Some("Cannot delete the default branch"),
        ));
    }
    state
        .forge
        .git
        .delete_branch(&branch)
        .map_err(|e| Reply::error(500, format!("{e:#}")))?;
    Ok(Reply::empty(204))
}
