// Manifest scenarios that only `cargo xtask soak` runs (xtask/src/soak.rs): they record on
// the order of 100 million events and take minutes, which is their point (the trace is
// streamed while the program runs, and memory must stay bounded), but too long for
// `cargo xtask test`. The Node suite (tests/node/scenarios.test.mjs) and the browser suite
// (tests/browser/run.mjs) leave them out (the Node suite checks that `cargo xtask soak` runs
// them); the manifest still states
// their expected outcome and findings, which `cargo xtask soak` checks.

/** Scenario name -> why it is left to `cargo xtask soak`. */
export const SOAK_ONLY = Object.freeze({
  sum_buffers_100m: 'about 100M traced memory events over minutes; run by `cargo xtask soak`',
  touch_distinct_10m: 'ten million variables, about 3 GB of memory and 1.5 GB of trace files; run by `cargo xtask soak`',
});
