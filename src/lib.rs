//! forgehand turns labelled issues on a code forge into merged pull requests by
//! supervising one interactive AI coding agent per issue, each in its own tmux
//! session `dev-<project>-<issue>`.
//!
//! # Layout
//!
//! - `cli.rs`: the command line; `daemon.rs`: what `forgehand run` sets up;
//!   `dry_run.rs`: `run --dry-run`, a poll that changes nothing (deciding
//!   with the poller's `poller/dependencies.rs`); `doctor.rs`:
//!   `forgehand doctor`, the set-up checks (`doctor/services.rs`: the
//!   webhook, CI and Matrix ones).
//! - `config/`: project files (`projects/*.toml`): parsing and validation;
//!   `[forge]` becomes one `ForgeConfig` variant per kind.
//! - `actors/`: the supervisor, per-project pollers, merge scanners and one dev
//!   actor per issue. `actors/dev/`: `machine.rs` is its pure transition
//!   function; the effects it asks for run in `effects.rs` (dispatch, reports),
//!   `session.rs` (tmux), `publish.rs` (push, PR), `checks.rs` (CI, reviews),
//!   `outcome.rs` (claim, merge, finish, block); `files.rs` reads what the agent
//!   writes. `merging.rs` is the one merge decision (a pure `decide`) and the
//!   one `merge_and_finish`; `outage.rs` how an effect waits out a forge
//!   outage; `timings.rs` the daemon's retry and timeout durations;
//!   `parent.rs` the typed handle children reach the supervisor through.
//! - `forge/`: the `Forge` trait, everything actors ask of a forge (issues,
//!   labels, pulls, reviews, statuses, merges, issue links, drafts, whether it
//!   reports its own changes), and its implementations: `forgejo/` for Forgejo
//!   and Gitea, `github/` for GitHub (a token or a GitHub App), `local/` for a
//!   folder of plan files and a local repository; `changes.rs`, how the HTTP
//!   forges' backlog and pull list are followed through what changed; `token.rs`, where credentials
//!   come from (renewed for an App). The test suite's `conformance/` holds
//!   every implementation to one contract.
//! - `ci/`: the `CiServer` trait (a failing pipeline's steps and log tails,
//!   restarts) and its clients: Woodpecker, GitHub Actions.
//! - `http/`: what the forge and CI clients share: set-up, the one retry
//!   policy (`retry.rs`) and how a failed call is described (`error.rs`).
//! - `store/`: the SQLite state (`state/forgehand.db`) and the event journal, on a
//!   thread of its own for the daemon, read-only for `forgehand status`.
//! - `tmux.rs`, `git.rs`: the external programs forgehand drives; `git.rs`'s
//!   `GitRunner` runs every git command, the local backend's included;
//!   `tmux/liveness.rs`: the hooks and the one call that tell of dead panes
//!   and closed sessions (`actors/dev/liveness.rs` routes the news, with
//!   `liveness/exits.rs` watching the agents' processes); `git/agent_repo.rs`:
//!   an agent's repository, made in two git processes.
//! - `agent/`: what differs per agent program (`[agent] kind`): preparing a
//!   session, readiness, the agent's own signals, token use, clean-up.
//! - `phase.rs`: the phase-file protocol the agent speaks; `prompt.rs`: what is pasted to it;
//!   `commands.rs`: the `/forgehand …` commands people write in comments.
//! - `picking.rs`: which ready issue goes next; `budget.rs`: what agents'
//!   tokens cost and the `[budget]` limits on them.
//! - `notify.rs`: the notifier interface; `matrix/`: its Matrix implementation
//!   (a thread per issue, escalations, replies read back from chat), sending
//!   from the chat outbox in the store (`store/outbox.rs`) so nothing owed to
//!   the room is lost to an outage or a restart.
//! - `webhook/`: the optional HTTP listener; verified forge events become nudges.
//! - `dashboard/`: the optional web dashboard for people (`run --dashboard`):
//!   live pages, `/api/status`, `/metrics`.
//! - `redact.rs`: the secret redactor for everything forgehand posts;
//!   `text.rs`: forge text with its control characters escaped for display.
//! - `sandbox.rs`: the bubblewrap sandbox agents (and local CI) run in;
//!   `untrusted.rs`: reading and writing files an agent can touch (no links
//!   followed, sizes capped); `transient.rs`: which failures are outages.
//! - `lockfile.rs`, `paths.rs`: the state directory.

pub mod actors;
pub mod agent;
pub mod budget;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod demo;
pub mod doctor;
pub mod dry_run;
pub mod forge;
pub mod git;
pub mod http;
pub mod lockfile;
pub mod matrix;
pub mod notify;
pub mod paths;
pub mod phase;
pub mod picking;
pub mod prompt;
pub mod redact;
pub mod sandbox;
pub mod store;
pub mod text;
pub mod tmux;
pub mod transient;
pub mod untrusted;
pub mod webhook;
