//! The one retry policy every forge request goes through (stub).
