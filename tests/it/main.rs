//! The one integration-test binary: a module per area.

mod fake_forge;
mod fake_forge_selftest;
