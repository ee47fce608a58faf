//! tmux (stub)
