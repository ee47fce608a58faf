//! Forgejo/Gitea REST v1 client (stub; implemented in its own change).
