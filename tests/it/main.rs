//! The one integration-test binary: a module per area.

mod config;
mod forgejo_client;
mod machine;
mod phase;
mod picking;
mod redact;
mod store;
mod support;
mod tmux_git;
