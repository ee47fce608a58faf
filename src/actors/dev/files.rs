//! The files the agent writes in its session folder: the phase file (each
//! write handled once), the refusal's summary, the scratch notes. All are
//! hostile input (`untrusted`): no links, no pipes, capped.

use std::path::PathBuf;

use crate::phase::{self, PhaseError};
use crate::store::EventKind;

use super::DevRun;
use super::machine::{Event, PhaseWrite};

/// The most of the phase file ever read: a phase and a reason.
const MAX_PHASE_BYTES: usize = 4096;
/// The most of the summary or the scratch notes ever read.
pub(crate) const MAX_AGENT_FILE_BYTES: usize = 64 * 1024;

/// The phase file's modification time and (capped) content.
fn read_phase(
    path: &std::path::Path,
) -> Result<(Option<i64>, crate::untrusted::Capped), crate::untrusted::UntrustedError> {
    use std::io::Read;
    let file = crate::untrusted::open_regular(path)?;
    let mtime = file
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64);
    let mut bytes = Vec::new();
    file.take(MAX_PHASE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| crate::untrusted::UntrustedError::Io {
            path: path.display().to_string(),
            source,
        })?;
    let truncated = bytes.len() > MAX_PHASE_BYTES;
    bytes.truncate(MAX_PHASE_BYTES);
    Ok((mtime, crate::untrusted::Capped { bytes, truncated }))
}

impl DevRun {
    /// Read the phase file after a write; each write is handled once. The
    /// file is the agent's: a link, a pipe or a device in its place is
    /// reported, never read, and no more than `MAX_PHASE_BYTES` are read.
    pub(super) async fn read_phase_file(&mut self) -> anyhow::Result<Option<Event>> {
        let path = self.phase_file();
        let read = tokio::task::spawn_blocking(move || read_phase(&path)).await?;
        let (mtime, capped) = match read {
            Ok(read) => read,
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => {
                let problem = e.to_string();
                if self.phase_problem.as_deref() != Some(problem.as_str()) {
                    self.journal(EventKind::PhaseInvalid, &problem);
                    self.paste(&crate::prompt::phase_file_unreadable(&problem))
                        .await?;
                    self.phase_problem = Some(problem);
                }
                return Ok(None);
            }
        };
        self.phase_problem = None;
        if capped.truncated {
            self.journal(
                EventKind::PhaseInvalid,
                &format!("the phase file is over {MAX_PHASE_BYTES} bytes: only its start was read"),
            );
        }
        let path = self.phase_file();
        let content = capped.text();
        let write = mtime.map(|mtime_ns| PhaseWrite {
            mtime_ns,
            content: content.clone(),
        });
        if write.is_some() && write == self.state.phase_seen {
            return Ok(None);
        }
        let parsed = phase::parse(&content);
        if parsed == Err(PhaseError::Empty) {
            return Ok(None);
        }
        let mut next = self.state.clone();
        next.phase_seen = write;
        self.set_state(next).await?;
        match parsed {
            Ok(report) if report.is_refusal() => Ok(Some(self.read_refusal(report).await)),
            Ok(report) => Ok(Some(Event::Phase(report))),
            Err(e) => {
                self.journal(EventKind::PhaseInvalid, &e.to_string());
                self.paste(&crate::prompt::phase_file_invalid(&path, &e.to_string()))
                    .await?;
                Ok(None)
            }
        }
    }

    /// A refusal is only as good as its summary: an unreadable one makes it
    /// an ordinary failure, with the reason saying why.
    pub(super) async fn read_refusal(&self, report: phase::PhaseReport) -> Event {
        let summary = self.read_agent_file(self.summary_file()).await;
        match phase::parse_refusal(&summary) {
            Ok(refusal) => Event::Refused(refusal),
            Err(e) => {
                self.journal(
                    EventKind::PhaseInvalid,
                    &format!("refusal without a usable summary: {e}"),
                );
                Event::Phase(phase::PhaseReport {
                    reason: Some(format!("refused, but {e}")),
                    ..report
                })
            }
        }
    }

    /// One of the agent's files (summary, scratch notes), at most
    /// `MAX_AGENT_FILE_BYTES` of it; what cannot be read (missing, not a
    /// plain file) is journaled and taken as empty.
    pub(super) async fn read_agent_file(&self, path: PathBuf) -> String {
        match crate::untrusted::read_capped_async(&path, MAX_AGENT_FILE_BYTES).await {
            Ok(read) => {
                crate::untrusted::cap_text(&read.text(), MAX_AGENT_FILE_BYTES, read.truncated)
            }
            Err(e) if e.is_missing() => String::new(),
            Err(e) => {
                self.journal(EventKind::PhaseInvalid, &e.to_string());
                String::new()
            }
        }
    }
}
