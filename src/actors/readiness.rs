//! Whether a ready-labelled issue's dependencies are closed: asked by the
//! poller before it claims, and by `run --dry-run` to say why it would not.

use crate::forge::{Forge, ForgeError, Issue, IssueNumber, IssueState};
use crate::picking;

/// The dependencies of `issue` still open, empty when it is ready. Both
/// kinds must be closed: `Depends on #N` / `Blocked by #N` lines (plus
/// `also`, the issues an agent said it waits for) and the forge's own
/// dependency links. The first open one found is enough to say "not ready",
/// so the list may be short of the whole truth.
pub async fn open_dependencies(
    forge: &dyn Forge,
    issue: &Issue,
    also: Vec<IssueNumber>,
) -> anyhow::Result<Vec<IssueNumber>> {
    let mut deps = picking::body_dependencies(&issue.body);
    deps.extend(also);
    for dep in deps {
        match forge.get_issue(dep).await {
            Ok(d) if d.state == IssueState::Closed => {}
            Ok(_) => {
                tracing::debug!("#{} waits for open #{dep}", issue.number);
                return Ok(vec![dep]);
            }
            Err(ForgeError::NotFound(_)) => {
                tracing::warn!("#{} depends on #{dep}, which does not exist", issue.number);
                return Ok(vec![dep]);
            }
            Err(e) => return Err(e.into()),
        }
    }
    match forge.issue_dependencies(issue.number).await {
        Ok(deps) => Ok(deps
            .iter()
            .filter(|d| d.state != IssueState::Closed)
            .map(|d| d.number)
            .collect()),
        // Dependencies may be disabled on the repository.
        Err(ForgeError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}
