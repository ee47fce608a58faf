//! The one integration-test binary: a module per area.
mod support;
mod tmux_git;
