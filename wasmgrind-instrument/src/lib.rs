//! Injects tracing hooks into a patched module (see the instrumentation issue).
