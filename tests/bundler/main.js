// The app: a page that runs an exported function of a multithreaded WebAssembly module with
// Wasmgrind, from the page's main thread, as any app that depends on the `wasmgrind`
// package would. The bundler test (run.mjs) drives it through `globalThis.wgTest`.

// ANCHOR: import
import { wasmgrind } from 'wasmgrind';
// ANCHOR_END: import

function log(line) {
  document.getElementById('log').textContent += `${line}\n`;
}

/**
 * Runs `functionName` of the module at `wasmUrl` and resolves to a plain object for the
 * driver: `{ ok: true, ms, status, events, detached, std, metadata }` or
 * `{ ok: false, ms, error: { kind, message } }`.
 */
async function run(wasmUrl, functionName, options) {
  const started = performance.now();
  try {
    // ANCHOR: call
    const result = await wasmgrind(new URL(wasmUrl, location.href), functionName, options);
    // ANCHOR_END: call
    const ms = performance.now() - started;
    log(`${functionName}: ${result.status}, ${result.events} events in ${ms.toFixed(0)} ms`);
    return {
      ok: true,
      ms,
      status: result.status,
      events: result.events,
      detached: result.detached.length,
      std: result.std,
      metadata: result.metadata,
    };
  } catch (e) {
    log(`${functionName}: ${e.kind ?? e.name}: ${e.message}`);
    const error = { kind: e.kind ?? e.name, message: String(e.message) };
    return { ok: false, ms: performance.now() - started, error };
  }
}

globalThis.wgTest = { run };
globalThis.wgTestReady = true;
