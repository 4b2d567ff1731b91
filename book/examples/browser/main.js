// The script of the book's browser example (index.html): runs an exported function of a
// multithreaded WebAssembly module with Wasmgrind from the page's main thread and shows
// the outcome, what the program wrote and the detectors' report.

// The package is served, unchanged, at /pkg/ of this origin (with a bundler, import
// 'wasmgrind' instead).
// ANCHOR: import
import { wasmgrind } from '/pkg/wasmgrind.js';
// ANCHOR_END: import

const statusLine = document.getElementById('status');
const output = document.getElementById('output');
const report = document.getElementById('report');

// ANCHOR: run
/**
 * Runs `functionName` of the module at `moduleUrl` (relative to the page) with
 * `options` (those of `wasmgrind()`), shows the outcome on the page and resolves to the
 * result, or rejects with the `WasmgrindError`. `functionName` undefined runs a wasi
 * program's `_start`. The form below calls it; it is exported so that other scripts can
 * call it too (Wasmgrind's browser tests run their scenarios through it).
 */
export async function runModule(moduleUrl, functionName, options = {}) {
  statusLine.textContent = `Running ${functionName ?? '_start'}…`;
  output.textContent = '';
  report.textContent = '';
  try {
    // The run happens in a worker (wgrind_worker.js) that this call starts: the page's
    // main thread goes on, and what the program writes arrives while it runs.
    const result = await wasmgrind(new URL(moduleUrl, location.href), functionName, {
      ...options,
      onOutput(stream, text) {
        output.textContent += text;
        options.onOutput?.(stream, text);
      },
    });
    const counts = result.findings?.counts;
    statusLine.textContent =
      `${result.status} (exit code ${result.exitCode}), ${result.events} events` +
      (counts ? `; data races: ${counts.races}, potential deadlocks: ${counts.potential_deadlocks}` : '');
    report.textContent = result.report ?? '';
    return result;
  } catch (e) {
    // A trap, a panic, a deadlock, a timeout...: `kind` says which.
    statusLine.textContent = `${e.kind ?? e.name}: ${e.message}`;
    report.textContent = e.report ?? '';
    throw e;
  }
}
// ANCHOR_END: run

// ANCHOR: form
document.getElementById('run').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const functionName = form.get('function').trim() || undefined;
  // The outcome is on the page either way.
  runModule(form.get('module'), functionName).catch(() => {});
});
// ANCHOR_END: form
