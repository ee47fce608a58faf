//! The `Forge` trait for the local backend: plans are issues, pushed branches
//! with a record in the state are pull requests.

use async_trait::async_trait;
use chrono::Utc;

use super::scan::Entry;
use super::state::{CommentRecord, Location, PullRecord};
use super::{Inner, LOCAL_LOGIN, LocalForge, branch_sha, review};
use super::{comments, report};
use crate::forge::{
    CombinedStatus, Comment, CommitSha, Forge, ForgeError, ForgeResult, Issue, IssueNumber,
    IssueState, MergeRequest, NewPull, Nudge, PrNumber, PullRequest, Review, ReviewComment,
};

fn other(e: anyhow::Error) -> ForgeError {
    ForgeError::Other(e)
}

#[async_trait]
impl Forge for LocalForge {
    async fn current_user(&self) -> ForgeResult<String> {
        Ok(LOCAL_LOGIN.to_string())
    }

    /// Labels need no creating: they are plain names in plans and in the state.
    async fn ensure_labels(&self, _names: &[String]) -> ForgeResult<()> {
        Ok(())
    }

    /// A label here is only a name (front matter, folders, the overlay).
    async fn missing_labels(&self, _names: &[String]) -> ForgeResult<Vec<String>> {
        Ok(Vec::new())
    }

    async fn list_open_issues(&self, label: &str) -> ForgeResult<Vec<Issue>> {
        let scan = self.inner.scan()?;
        Ok(scan
            .iter()
            .filter(|(_, e)| e.location != Location::Done && e.plan.is_ok())
            .filter_map(|(key, entry)| self.inner.issue_of(key, entry))
            .filter(|issue| issue.has_label(label))
            .collect())
    }

    async fn get_issue(&self, n: IssueNumber) -> ForgeResult<Issue> {
        let (key, entry) = self.inner.entry(n)?;
        self.inner
            .issue_of(&key, &entry)
            .ok_or_else(|| ForgeError::NotFound(format!("issue #{n}")))
    }

    async fn issue_dependencies(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>> {
        let (key, entry) = self.inner.entry(n)?;
        let Ok(plan) = &entry.plan else {
            return Err(other(anyhow::anyhow!("plan `{key}` cannot be read")));
        };
        let scan = self.inner.scan()?;
        plan.depends_on
            .iter()
            .map(|dep| {
                scan.get(dep)
                    .and_then(|e| self.inner.issue_of(dep, e))
                    .ok_or_else(|| {
                        ForgeError::NotFound(format!("plan `{key}` depends on missing `{dep}`"))
                    })
            })
            .collect()
    }

    async fn add_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()> {
        let (key, entry) = self.inner.entry(n)?;
        self.inner.overlay(&key, label, true)?;
        if label == self.inner.labels.blocked && entry.location == Location::Top {
            self.inner
                .move_plan(&key, n, &entry, Location::Blocked)
                .await?;
        }
        self.inner.nudge(Nudge::Issue(n));
        Ok(())
    }

    async fn remove_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()> {
        let (key, entry) = self.inner.entry(n)?;
        self.inner.overlay(&key, label, false)?;
        if label == self.inner.labels.blocked && entry.location == Location::Blocked {
            self.inner.move_plan(&key, n, &entry, Location::Top).await?;
        }
        Ok(())
    }

    /// forgehand's own comments (in the state) and people's (`forgehand reply`).
    async fn list_comments(&self, n: u64) -> ForgeResult<Vec<Comment>> {
        let mut all: Vec<Comment> = {
            let state = self.inner.state();
            state
                .comments
                .get(&n)
                .map(|cs| {
                    cs.iter()
                        .map(|c| Comment {
                            id: c.id,
                            author: c.author.clone(),
                            body: c.body.clone(),
                            created_at: c.created_at,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        all.extend(comments::read_comments(&self.inner.plans, n).map_err(other)?);
        all.sort_by_key(|c| (c.created_at, c.id));
        Ok(all)
    }

    async fn create_comment(&self, n: u64, body: &str) -> ForgeResult<Comment> {
        let comment = self.inner.update(|state| {
            state.last_comment += 1;
            let comment = CommentRecord {
                id: state.last_comment,
                author: LOCAL_LOGIN.to_string(),
                body: body.to_string(),
                created_at: Utc::now(),
            };
            state.comments.entry(n).or_default().push(comment.clone());
            comment
        })?;
        Ok(Comment {
            id: comment.id,
            author: comment.author,
            body: comment.body,
            created_at: comment.created_at,
        })
    }

    async fn close_issue(&self, n: IssueNumber) -> ForgeResult<()> {
        let (key, entry) = self.inner.entry(n)?;
        if entry.location != Location::Done {
            self.inner
                .move_plan(&key, n, &entry, Location::Done)
                .await?;
        }
        Ok(())
    }

    async fn list_open_pulls(&self) -> ForgeResult<Vec<PullRequest>> {
        let open: Vec<PullRecord> = self
            .inner
            .state()
            .pulls
            .values()
            .filter(|p| p.state == IssueState::Open)
            .cloned()
            .collect();
        let mut pulls = Vec::new();
        for record in &open {
            pulls.push(self.inner.pull(record).await?);
        }
        Ok(pulls)
    }

    async fn find_pull(&self, base: &str, head: &str) -> ForgeResult<Option<PullRequest>> {
        let found = self
            .inner
            .state()
            .pulls
            .values()
            .filter(|p| p.base == base && p.head == head)
            .max_by_key(|p| p.number)
            .cloned();
        match found {
            Some(record) => Ok(Some(self.inner.pull(&record).await?)),
            None => Ok(None),
        }
    }

    async fn get_pull(&self, n: PrNumber) -> ForgeResult<PullRequest> {
        let record = self
            .inner
            .state()
            .pulls
            .get(&n.0)
            .cloned()
            .ok_or_else(|| ForgeError::NotFound(format!("pull request #{n}")))?;
        self.inner.pull(&record).await
    }

    async fn create_pull(&self, new: &NewPull) -> ForgeResult<PullRequest> {
        let existing = self
            .inner
            .state()
            .pulls
            .values()
            .find(|p| p.head == new.head && p.base == new.base && p.state == IssueState::Open)
            .cloned();
        if let Some(existing) = existing {
            // Like a retried create on a forge: the one that landed.
            return self.inner.pull(&existing).await;
        }
        if branch_sha(&self.inner.repo, &new.head)
            .await
            .map_err(other)?
            .is_none()
        {
            return Err(ForgeError::NotFound(format!(
                "branch {} in {}",
                new.head,
                self.inner.repo.display()
            )));
        }
        let record = self.inner.update(|state| {
            let record = PullRecord {
                number: state.next_number(),
                title: new.title.clone(),
                body: new.body.clone(),
                head: new.head.clone(),
                base: new.base.clone(),
                state: IssueState::Open,
                merged: false,
                merge_commit: None,
                merged_head: None,
                created_at: Utc::now(),
                ci_attempts: 0,
            };
            state.pulls.insert(record.number, record.clone());
            record
        })?;
        self.inner.pull(&record).await
    }

    async fn list_reviews(&self, n: PrNumber) -> ForgeResult<Vec<Review>> {
        review::read_reviews(&self.inner.plans, n.0).map_err(other)
    }

    /// Reviews from the CLI carry no line comments.
    async fn list_review_comments(
        &self,
        _n: PrNumber,
        _review: u64,
    ) -> ForgeResult<Vec<ReviewComment>> {
        Ok(Vec::new())
    }

    async fn combined_status(&self, sha: &CommitSha) -> ForgeResult<CombinedStatus> {
        Ok(self.inner.ci_status(sha))
    }

    async fn merge_pull(&self, n: PrNumber, req: &MergeRequest) -> ForgeResult<()> {
        self.inner.merge(n, req).await
    }

    async fn delete_branch(&self, name: &str) -> ForgeResult<()> {
        self.inner.delete(name).await.map_err(other)
    }

    /// Everyone who can reach the plans folder is the person running forgehand.
    async fn can_write(&self, _login: &str) -> ForgeResult<bool> {
        Ok(true)
    }

    /// The plan file, wherever it lies now (top folder, `blocked/`, `done/`).
    fn issue_url(&self, n: IssueNumber) -> String {
        self.inner.plan_url(n)
    }

    /// The folder watch (`watch`) sees every change: plans, reviews, CI results.
    fn reports_changes(&self) -> bool {
        true
    }

    fn issue_key(&self, n: IssueNumber) -> String {
        self.inner.key_of(n.0).unwrap_or_else(|| n.to_string())
    }

    fn issue_for_key(&self, key: &str) -> Option<IssueNumber> {
        self.inner
            .state()
            .issues
            .get(key)
            .map(|r| IssueNumber(r.number))
    }

    fn watch(&self, nudges: tokio::sync::mpsc::UnboundedSender<Nudge>) -> anyhow::Result<()> {
        self.inner.start_watching(nudges)
    }
}

impl Inner {
    /// Adds (or removes) `label` in forgehand's overlay of the plan's labels.
    fn overlay(&self, key: &str, label: &str, add: bool) -> ForgeResult<()> {
        self.update(|state| {
            if let Some(record) = state.issues.get_mut(key) {
                let (into, from) = if add {
                    (&mut record.added, &mut record.removed)
                } else {
                    (&mut record.removed, &mut record.added)
                };
                from.retain(|l| l != label);
                if !into.iter().any(|l| l == label) {
                    into.push(label.to_string());
                }
            }
        })
    }

    /// Moves the plan file into `to`'s folder and writes its report there.
    async fn move_plan(
        &self,
        key: &str,
        n: IssueNumber,
        entry: &Entry,
        to: Location,
    ) -> ForgeResult<()> {
        let dir = match to.folder() {
            Some(folder) => self.plans.join(folder),
            None => self.plans.clone(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            other(anyhow::Error::new(e).context(format!("creating {}", dir.display())))
        })?;
        // A later plan with a used key never replaces the earlier one.
        let stem = match to {
            Location::Top => key.to_string(),
            _ => report::free_stem(&self.plans, key, to),
        };
        let target = dir.join(format!("{stem}.md"));
        std::fs::rename(&entry.path, &target).map_err(|e| {
            other(anyhow::Error::new(e).context(format!(
                "moving {} to {}",
                entry.path.display(),
                target.display()
            )))
        })?;
        self.update(|state| {
            if let Some(record) = state.issues.get_mut(key) {
                record.location = to;
                record.file = (stem != key).then(|| stem.clone());
                if to == Location::Top {
                    record.added.clear();
                    record.removed.clear();
                }
            }
        })?;
        if to == Location::Top {
            return Ok(());
        }
        report::remove_top(&self.plans, key);
        let title = match &entry.plan {
            Ok(plan) => plan.title.clone(),
            Err(_) => key.to_string(),
        };
        self.write_outcome(key, &stem, n.0, &title, to)
            .await
            .map_err(other)
    }

    /// `file://` and the path of issue `n`'s plan, as its `Issue::html_url`
    /// gives it; the plans folder for a number no plan has.
    fn plan_url(&self, n: IssueNumber) -> String {
        let state = self.state();
        let found = state.issues.iter().find(|(_, r)| r.number == n.0);
        let path = match found {
            Some((key, record)) => {
                let dir = match record.location.folder() {
                    Some(folder) => self.plans.join(folder),
                    None => self.plans.clone(),
                };
                dir.join(format!("{}.md", record.file.as_deref().unwrap_or(key)))
            }
            None => self.plans.clone(),
        };
        format!("file://{}", path.display())
    }

    /// The pull request as the forge shows it: head and mergeability read live.
    async fn pull(&self, record: &PullRecord) -> ForgeResult<PullRequest> {
        let live = branch_sha(&self.repo, &record.head).await.map_err(other)?;
        let head = live
            .or_else(|| record.merged_head.clone())
            .unwrap_or_default();
        let mergeable = if record.state == IssueState::Open {
            self.mergeable(&record.base, &record.head).await
        } else {
            None
        };
        Ok(PullRequest {
            number: PrNumber(record.number),
            title: record.title.clone(),
            body: record.body.clone(),
            head_ref: record.head.clone(),
            head_sha: CommitSha(head),
            base_ref: record.base.clone(),
            state: record.state,
            merged: record.merged,
            mergeable,
            merge_commit_sha: record.merge_commit.clone().map(CommitSha),
            html_url: format!("{}#pull-{}", self.repo.display(), record.number),
            author: LOCAL_LOGIN.to_string(),
            updated_at: None,
        })
    }
}
