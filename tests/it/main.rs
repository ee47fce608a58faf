//! The one integration-test binary: a module per area.

mod cli;
mod config;
mod e2e;
mod fake_forge;
mod fake_forge_selftest;
mod fake_woodpecker;
mod feedback;
mod forge_faults;
mod forgejo_client;
mod harness;
mod local_plans;
mod machine;
mod matrix;
mod matrix_e2e;
mod merge_scanner;
mod phase;
mod picking;
mod recovery;
mod redact;
mod store;
mod support;
mod swagger;
mod synapse;
mod tmux_git;
mod webhook;
mod woodpecker;
