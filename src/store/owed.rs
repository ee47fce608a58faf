//! What a finished claim still owes the forge: the effects of its last
//! transition (block, release, finish) that have not got through yet, kept
//! as JSON in `owed_effects` so a forge outage plus a restart loses none of
//! them. Written when a claim ends, deleted once its effects are done; the
//! store does not read the JSON, its dev actor does.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};

use anyhow::Context;

use super::{Db, Store};

impl Db {
    pub fn save_owed(&self, project: &str, issue: u64, effects_json: &str) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO owed_effects (project, issue, effects_json, saved_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project, issue) DO UPDATE SET
                    effects_json = excluded.effects_json, saved_at = excluded.saved_at",
                params![project, issue as i64, effects_json, Utc::now().to_rfc3339()],
            )
            .with_context(|| format!("saving what {project}#{issue} owes the forge"))?;
        Ok(())
    }

    pub fn clear_owed(&self, project: &str, issue: u64) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "DELETE FROM owed_effects WHERE project = ?1 AND issue = ?2",
                params![project, issue as i64],
            )
            .with_context(|| format!("clearing what {project}#{issue} owed the forge"))?;
        Ok(())
    }

    pub fn owed(&self, project: &str, issue: u64) -> anyhow::Result<Option<String>> {
        if !self.has_owed() {
            return Ok(None);
        }
        self.conn()
            .query_row(
                "SELECT effects_json FROM owed_effects WHERE project = ?1 AND issue = ?2",
                params![project, issue as i64],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("reading what {project}#{issue} owes the forge"))
    }

    /// The issues of `project` that owe the forge something.
    pub fn owing(&self, project: &str) -> anyhow::Result<Vec<u64>> {
        if !self.has_owed() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn()
            .prepare("SELECT issue FROM owed_effects WHERE project = ?1 ORDER BY issue")?;
        let rows = stmt
            .query_map(params![project], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|n| n as u64))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading what {project}'s issues owe the forge"))?;
        Ok(rows)
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    pub async fn save_owed(
        &self,
        project: &str,
        issue: u64,
        effects_json: String,
    ) -> anyhow::Result<()> {
        let project = project.to_string();
        self.call(move |db| db.save_owed(&project, issue, &effects_json))
            .await
    }

    pub async fn clear_owed(&self, project: &str, issue: u64) -> anyhow::Result<()> {
        let project = project.to_string();
        self.call(move |db| db.clear_owed(&project, issue)).await
    }

    pub async fn owed(&self, project: &str, issue: u64) -> anyhow::Result<Option<String>> {
        let project = project.to_string();
        self.call(move |db| db.owed(&project, issue)).await
    }

    pub async fn owing(&self, project: &str) -> anyhow::Result<Vec<u64>> {
        let project = project.to_string();
        self.call(move |db| db.owing(&project)).await
    }
}
