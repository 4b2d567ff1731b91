//! Installs the pinned nightly toolchain (being written).
