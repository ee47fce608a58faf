//! The forge's API quota per project as it last reported it (migration 8):
//! GitHub counts requests per hour, and `forgehand status`, which reads only
//! the database, shows how many are left. One row per project, overwritten.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use anyhow::Context;

use super::{Db, Store, parse_time};

/// One project's quota, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgeQuota {
    pub project: String,
    /// Requests left until `reset_at`.
    pub remaining: u64,
    /// Requests per window, when the forge said.
    pub limit: Option<u64>,
    pub reset_at: DateTime<Utc>,
    /// When the forge reported it.
    pub updated_at: DateTime<Utc>,
}

impl Db {
    pub fn save_forge_quota(
        &self,
        project: &str,
        remaining: u64,
        limit: Option<u64>,
        reset_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO forge_quota (project, remaining, quota_limit, reset_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (project) DO UPDATE SET
                    remaining = excluded.remaining, quota_limit = excluded.quota_limit,
                    reset_at = excluded.reset_at, updated_at = excluded.updated_at",
                params![
                    project,
                    remaining as i64,
                    limit.map(|l| l as i64),
                    reset_at.to_rfc3339(),
                    Utc::now().to_rfc3339()
                ],
            )
            .with_context(|| format!("saving the forge quota of {project}"))?;
        Ok(())
    }

    /// Every project's recorded quota, by project name; none from a database
    /// older than the table (a read-only open reads the schema as it is).
    pub fn forge_quotas(&self) -> anyhow::Result<Vec<ForgeQuota>> {
        let conn = self.conn();
        let has_table: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'forge_quota'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .context("looking for the forge quota table")?
            > 0;
        if !has_table {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT project, remaining, quota_limit, reset_at, updated_at FROM forge_quota
             ORDER BY project",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ForgeQuota {
                    project: r.get(0)?,
                    remaining: r.get::<_, i64>(1)?.max(0) as u64,
                    limit: r.get::<_, Option<i64>>(2)?.map(|l| l.max(0) as u64),
                    reset_at: parse_time(&r.get::<_, String>(3)?),
                    updated_at: parse_time(&r.get::<_, String>(4)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading the forge quotas")?;
        Ok(rows)
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    pub async fn save_forge_quota(
        &self,
        project: &str,
        remaining: u64,
        limit: Option<u64>,
        reset_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let project = project.to_string();
        self.call(move |db| db.save_forge_quota(&project, remaining, limit, reset_at))
            .await
    }
}
