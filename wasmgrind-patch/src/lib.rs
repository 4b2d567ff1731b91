//! Patcher.
