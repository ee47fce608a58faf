//! Handlers for pull requests, reviews, merges, commit statuses and branches: the parts
//! of the API backed by the real bare repository.

use chrono::Utc;
use serde_json::Value;

use super::behaviour::{referenced_issues, settle};
use super::git::MergeOutcome;
use super::routes::{Reply, Req, paginate};
use super::state::{ForgeState, MergeRecord, Pull};

type Handled = Result<Reply, Reply>;

/// Commit status states Forgejo accepts.
const STATUS_STATES: [&str; 5] = ["pending", "success", "error", "failure", "warning"];

pub fn list_pulls(state: &mut ForgeState, req: &Req) -> Handled {
    let wanted_state = req.q("state").unwrap_or("open");
    let label_ids: Vec<u64> = req
        .q_all("labels")
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    let label_names: Vec<String> = state
        .labels
        .iter()
        .filter(|l| label_ids.contains(&l.id))
        .map(|l| l.name.clone())
        .collect();
    let mut numbers: Vec<u64> = state
        .pulls
        .keys()
        .map(|n| &state.issues[n])
        .filter(|i| wanted_state == "all" || i.state == wanted_state)
        .filter(|i| label_ids.is_empty() || label_names.iter().any(|l| i.has_label(l)))
        .filter(|i| req.q("poster").is_none_or(|p| p == i.user))
        .map(|i| i.number)
        .collect();
    match req.q("sort") {
        Some("oldest") => numbers.sort_unstable(),
        Some("recentupdate") => {
            numbers.sort_by_key(|n| std::cmp::Reverse(state.issues[n].updated_at))
        }
        Some("leastupdate") => numbers.sort_by_key(|n| state.issues[n].updated_at),
        _ => numbers.sort_unstable_by(|a, b| b.cmp(a)),
    }
    let json = numbers.into_iter().map(|n| state.pull_json(n)).collect();
    Ok(paginate(&state.base_url, req, json))
}

/// POST {head, base, title, body}: the head branch must exist in the bare repository.
pub fn create_pull(state: &mut ForgeState, req: &Req) -> Handled {
    // `owner:branch` names a fork's branch; the fake has no forks, so only the own owner.
    let head_field = req.str_field("head").unwrap_or_default();
    let head = match head_field.split_once(':') {
        Some((owner, branch)) if owner.eq_ignore_ascii_case(&state.owner) => branch,
        Some(_) => {
            return Err(Reply::error(
                404,
                format!("head {head_field:?} is not in this repository"),
            ));
        }
        None => head_field,
    }
    .to_owned();
    let base = req.str_field("base").unwrap_or_default().to_owned();
    let title = req.str_field("title").unwrap_or_default().to_owned();
    if head.is_empty() || base.is_empty() || title.trim().is_empty() {
        return Err(Reply::error(422, "head, base and title are required"));
    }
    if head == base {
        return Err(Reply::error(422, "head and base are the same branch"));
    }
    if state.git.branch_sha(&base).is_none() {
        return Err(Reply::error(
            404,
            format!("base branch {base:?} does not exist"),
        ));
    }
    if state.git.branch_sha(&head).is_none() {
        return Err(Reply::error(
            404,
            format!("head branch {head:?} does not exist"),
        ));
    }
    if let Some(existing) = state
        .pulls
        .values()
        .find(|p| p.head == head && p.base == base && state.issues[&p.number].is_open())
    {
        return Err(Reply::error(
            409,
            format!(
                "pull request already exists for these targets [id: {}, issue_id: {}, head_repo_id: 1, base_repo_id: 1, head_branch: {head}, base_branch: {base}]",
                2000 + existing.number,
                1000 + existing.number
            ),
        ));
    }
    let bot = state.bot_login.clone();
    let n = state.new_issue(
        &title,
        req.str_field("body").unwrap_or_default(),
        &bot,
        true,
    );
    state.pulls.insert(n, Pull::new(n, head, base));
    state.attach_label_ids(n, &req.body);
    // Reads the head from git and lets the simulated CI see it, before answering.
    settle(state);
    Ok(Reply::json(201, state.pull_json(n)))
}

fn existing_pull(state: &ForgeState, req: &Req) -> Result<u64, Reply> {
    let n = req.number("index")?;
    if state.pulls.contains_key(&n) {
        Ok(n)
    } else {
        Err(Reply::error(
            404,
            format!("pull request #{n} does not exist"),
        ))
    }
}

pub fn get_pull(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    Ok(Reply::json(200, state.pull_json(n)))
}

pub fn list_reviews(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let reviews: Vec<_> = state.reviews(n).cloned().collect();
    let json = reviews.iter().map(|r| state.review_json(r)).collect();
    Ok(paginate(&state.base_url, req, json))
}

pub fn review_comments(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let id = req.number("id")?;
    let Some(review) = state.reviews(n).find(|r| r.id == id).cloned() else {
        return Err(Reply::error(
            404,
            format!("review {id} of pull request #{n} does not exist"),
        ));
    };
    let json = review
        .comments
        .iter()
        .map(|c| state.review_comment_json(&review, c))
        .collect();
    Ok(Reply::json(200, Value::Array(json)))
}

/// POST {Do, head_commit_id, delete_branch_after_merge, MergeTitleField, MergeMessageField}.
/// Already merged or closed → 405; stale `head_commit_id` → 409; conflict → 405 with
/// `mergeable` false; otherwise a real merge into the base branch and 200.
pub fn merge(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_pull(state, req)?;
    let pull = state.pulls[&n].clone();
    let issue = state.issues[&n].clone();
    if pull.merged {
        return Err(Reply::error(405, "The PR is already merged"));
    }
    if !issue.is_open() {
        return Err(Reply::error(405, "The PR is closed"));
    }
    if let Some(expected) = req.str_field("head_commit_id").filter(|h| !h.is_empty())
        && expected != pull.head_sha
    {
        return Err(Reply::error(
            409,
            format!(
                "head commit {expected} is out of date: the PR head is {}",
                pull.head_sha
            ),
        ));
    }
    let style = req.str_field("Do").unwrap_or_default().to_owned();
    let (merge_commit, base_after) = if style == "manually-merged" {
        let sha = req
            .str_field("MergeCommitID")
            .unwrap_or_default()
            .to_owned();
        (sha.clone(), sha)
    } else {
        let (squash, ff_only) = match style.as_str() {
            "merge" | "rebase" | "rebase-merge" => (false, false),
            "squash" => (true, false),
            "fast-forward-only" => (false, true),
            other => return Err(Reply::error(422, format!("unknown merge style {other:?}"))),
        };
        let title = req
            .str_field("MergeTitleField")
            .filter(|t| !t.is_empty())
            .map_or_else(
                || default_title(&style, n, &issue.title, &pull),
                str::to_owned,
            );
        let message = match req.str_field("MergeMessageField").filter(|m| !m.is_empty()) {
            Some(body) => format!("{title}\n\n{body}"),
            None => title,
        };
        let outcome = state
            .git
            .merge(
                &pull.base,
                &pull.base_sha,
                &pull.head_sha,
                &message,
                squash,
                ff_only,
            )
            .map_err(|e| Reply::error(500, format!("{e:#}")))?;
        match outcome {
            MergeOutcome::Merged { new_base } => (new_base.clone(), new_base),
            MergeOutcome::Conflict => {
                let p = state.pulls.get_mut(&n).expect("pull exists");
                p.mergeable = false;
                return Err(Reply::error(405, "Please try again later"));
            }
            MergeOutcome::NotFastForward => {
                return Err(Reply::error(405, "fast-forward-only merge is not possible"));
            }
        }
    };
    let now = Utc::now();
    let bot = state.bot_login.clone();
    let p = state.pulls.get_mut(&n).expect("pull exists");
    p.merged = true;
    p.merged_at = Some(now);
    p.merged_by = Some(bot);
    p.merge_commit_sha = Some(merge_commit);
    state.set_issue_state(n, "closed");
    state.merges.push(MergeRecord {
        pull: n,
        style,
        head_sha: pull.head_sha.clone(),
        base_before: pull.base_sha.clone(),
        base_after,
        at: now,
    });
    if req
        .body
        .get("delete_branch_after_merge")
        .and_then(Value::as_bool)
        == Some(true)
    {
        // Forgejo merges first and deletes after; a failed delete does not undo the merge.
        let _ = state.git.delete_branch(&pull.head);
    }
    if state.behaviour.close_referenced_issues_on_merge {
        for referenced in referenced_issues(&issue.body) {
            state.set_issue_state(referenced, "closed");
        }
    }
    Ok(Reply::empty(200))
}

fn default_title(style: &str, n: u64, title: &str, pull: &Pull) -> String {
    if style == "squash" {
        format!("{title} (#{n})")
    } else {
        format!(
            "Merge pull request '{title}' (#{n}) from {} into {}",
            pull.head, pull.base
        )
    }
}

pub fn combined_status(state: &mut ForgeState, req: &Req) -> Handled {
    let sha = state.git.resolve(req.param("ref"));
    let json = state.combined_json(&sha);
    let total = json["total_count"].as_u64().unwrap_or(0);
    let reply = Reply::json(200, json);
    Ok(if total > 0 {
        reply.with_header("x-total-count", total.to_string())
    } else {
        reply
    })
}

pub fn list_statuses(state: &mut ForgeState, req: &Req) -> Handled {
    let sha = state.git.resolve(req.param("ref"));
    let mut statuses: Vec<_> = state
        .statuses(&sha)
        .filter(|s| req.q("state").is_none_or(|w| w == s.state))
        .cloned()
        .collect();
    match req.q("sort") {
        Some("oldest" | "leastindex") => statuses.sort_by_key(|s| s.id),
        _ => statuses.sort_by_key(|s| std::cmp::Reverse(s.id)),
    }
    let json = statuses.iter().map(|s| state.status_json(s)).collect();
    Ok(paginate(&state.base_url, req, json))
}

pub fn create_status(state: &mut ForgeState, req: &Req) -> Handled {
    let sha = req.param("sha").to_owned();
    let status = req.str_field("state").unwrap_or_default();
    if !STATUS_STATES.contains(&status) {
        return Err(Reply::error(
            400,
            format!("invalid commit status state {status:?}"),
        ));
    }
    let context = req
        .str_field("context")
        .filter(|c| !c.is_empty())
        .unwrap_or("default");
    let bot = state.bot_login.clone();
    let id = state.new_status(
        &sha,
        context,
        status,
        req.str_field("description").unwrap_or_default(),
        req.str_field("target_url").unwrap_or_default(),
        &bot,
    );
    let created = state.created_status(id);
    Ok(Reply::json(201, state.status_json(&created)))
}

pub fn get_branch(state: &mut ForgeState, req: &Req) -> Handled {
    let name = req.param("branch");
    let Some(sha) = state.git.branch_sha(name) else {
        return Err(Reply::error(404, format!("branch {name:?} does not exist")));
    };
    let info = state
        .git
        .commit_info(&sha)
        .map_err(|e| Reply::error(500, format!("{e:#}")))?;
    Ok(Reply::json(200, state.branch_json(name, &info)))
}

pub fn delete_branch(state: &mut ForgeState, req: &Req) -> Handled {
    let name = req.param("branch");
    if state.git.branch_sha(name).is_none() {
        return Err(Reply::error(404, format!("branch {name:?} does not exist")));
    }
    if name == state.default_branch {
        return Err(Reply::error(403, "the default branch cannot be deleted"));
    }
    state
        .git
        .delete_branch(name)
        .map_err(|e| Reply::error(500, format!("{e:#}")))?;
    Ok(Reply::empty(204))
}
