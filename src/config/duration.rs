//! Durations written as `"90s"`, `"30m"`, `"2h"` (stub).
