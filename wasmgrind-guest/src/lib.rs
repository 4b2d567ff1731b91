//! Guest library.
