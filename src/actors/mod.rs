//! The actor tree (DESIGN §1): a supervisor per daemon, a poller and a merge
//! scanner per project, a dev actor per claimed issue.

pub mod budget_gate;
pub mod context;
pub mod dev;
pub mod fetches;
pub mod merge_scanner;
pub mod merging;
pub mod mirrors;
pub mod outage;
pub mod parent;
pub(crate) mod periodic;
pub mod poller;
pub mod reconcile;
pub mod supervisor;
pub mod timings;

pub use context::ProjectCtx;
pub use timings::Timings;
