//! forgehand turns labelled issues on a code forge into merged pull requests by
//! supervising one interactive AI coding agent per issue, each in its own tmux
//! session `dev-<project>-<issue>`.
//!
//! # Layout
//!
//! - `config/`: project files (`projects/*.toml`): parsing and validation.
//! - `forge/`: the forge interface and its Forgejo/Gitea client, with one retry policy.
//! - `store/`: the SQLite state (`state/forgehand.db`) and the event journal.
//! - `actors/`: the supervisor, per-project pollers and one dev actor per issue.
//! - `tmux.rs`, `git.rs`: the external programs forgehand drives.
//! - `phase.rs`: the phase-file protocol the agent speaks.
//! - `cli.rs`: the command line.

pub mod config;
pub mod forge;
pub mod git;
pub mod tmux;
