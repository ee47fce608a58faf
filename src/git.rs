//! git (stub)
