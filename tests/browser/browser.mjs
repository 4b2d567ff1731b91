// Starts what a browser test needs: the static server on 127.0.0.1 (COOP/COEP), headless
// Chromium driven by playwright-core with a fresh profile, and the test page: the book's
// browser example (book/examples/browser/index.html) with the tests' driver (driver.js)
// added to it. Shared by run.mjs (the tests) and bench.mjs (`cargo xtask bench runtime`).

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root, which the server serves. */
export const ROOT = resolve(here, '..', '..');

/** The page the browser tests load (a path below ROOT): the book's browser example. */
export const EXAMPLE_PAGE = 'book/examples/browser/index.html';

/** The module that openTestPage adds to the example page: `globalThis.wgTest`. */
export const DRIVER = 'tests/browser/driver.js';

/** Chromium from Debian's `chromium` package; `WASMGRIND_CHROMIUM` overrides it. */
export const CHROMIUM = process.env.WASMGRIND_CHROMIUM || '/usr/bin/chromium';

/**
 * The flags Chromium runs with: headless, no sandbox (we run as root in CI), and nothing
 * that reaches for the network, which is closed here except for loopback.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The guest manifest, `guests/manifest.json`. */
export async function loadManifest() {
  return JSON.parse(await readFile(join(ROOT, 'guests', 'manifest.json'), 'utf8'));
}

/** Fails with the command that fixes it when a build output the page needs is missing. */
export function checkBuildOutputs(guestFiles) {
  const missing = [];
  if (!existsSync(join(ROOT, 'pkg', 'wgrind_worker.js'))) {
    missing.push('pkg/wgrind_worker.js (run `cargo xtask dist`)');
  }
  for (const f of guestFiles) {
    if (!existsSync(join(ROOT, 'target', 'guests', f))) {
      missing.push(`target/guests/${f} (run \`cargo xtask guests\`)`);
    }
  }
  if (missing.length > 0) {
    throw new Error(`missing build outputs:\n  ${missing.join('\n  ')}`);
  }
}

/**
 * The URL path of a guest of guests-wasi/ (`crate`: its crate name, `runtime_checks`):
 * where `cargo xtask guests` copies it, else where `cargo build --release` in guests-wasi/
 * puts it. Fails with the command that builds it when neither exists.
 */
export function wasiGuestPath(crate) {
  const paths = [`target/guests/wasi/${crate}.wasm`, `guests-wasi/target/wasm32-wasip1-threads/release/${crate}.wasm`];
  const found = paths.find((p) => existsSync(join(ROOT, p)));
  if (found === undefined) {
    throw new Error(
      `missing build output: ${crate}.wasm is in neither ${paths.join(' nor ')} (run \`cargo xtask guests\`)`,
    );
  }
  return `/${found}`;
}

/**
 * Serves the repository, launches Chromium on a fresh profile, opens the book's example
 * page (EXAMPLE_PAGE) and adds the tests' driver (DRIVER) to it as a module script.
 * Resolves to `{ page, url, close() }`; `close()` closes the browser, stops the server
 * and removes the profile, and is safe to call more than once.
 *
 * `root` and `path` serve another directory and open another page in it; `url` opens a
 * page that something else serves (the bundler test's app, built or on Vite's servers).
 * Such a page gets no driver: it sets `globalThis.wgTestReady` itself when it is ready.
 * `log(line)` receives the page's errors, warnings and info lines (the driver's log).
 */
export async function openTestPage({ log = () => {}, root = ROOT, path = null, url: pageUrl = null } = {}) {
  const example = path === null && pageUrl === null;
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} does not exist: install Chromium with \`apt-get install -y chromium\` ` +
        '(cargo xtask test does it when run as root), or point WASMGRIND_CHROMIUM at a Chromium binary',
    );
  }
  let playwright;
  try {
    playwright = await import('playwright-core');
  } catch (e) {
    throw new Error(
      `cannot load playwright-core (${e.message}): run \`npm ci\` in tests/browser ` +
        '(cargo xtask test does it)',
    );
  }
  const server = pageUrl === null ? await startServer(root, { log }) : null;
  const profile = await mkdtemp(join(tmpdir(), 'wasmgrind-chromium-'));
  let context = null;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (context !== null) {
      // A browser that does not close in 10 s is killed by playwright at process exit.
      await Promise.race([context.close().catch(() => {}), sleep(10000)]);
    }
    await server?.close();
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  };
  try {
    // launchPersistentContext is playwright's way to pass --user-data-dir: a fresh, empty
    // profile for every run.
    context = await playwright.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (['error', 'warning', 'info'].includes(m.type())) log(`page ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    const url = pageUrl ?? `${server.url}${example ? EXAMPLE_PAGE : path}`;
    const response = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
    if (!response || !response.ok()) {
      throw new Error(`cannot load ${url}: HTTP ${response?.status()}`);
    }
    // The driver imports the example's script (the same module instance as the page's).
    if (example) await page.addScriptTag({ type: 'module', url: `${server.url}${DRIVER}` });
    await page.waitForFunction(() => globalThis.wgTestReady === true, null, { timeout: 30000 });
    return { page, url, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Checks the page's preconditions and throws a clear error if one is missing: without
 * cross-origin isolation there is no shared memory, and nothing else can work.
 */
export async function assertPreflight(page, guestFile) {
  const p = await page.evaluate((g) => globalThis.wgTest.preflight(g), `/target/guests/${guestFile}`);
  const problems = [];
  if (!p.crossOriginIsolated) {
    problems.push(
      'the page is not cross-origin isolated (crossOriginIsolated !== true): the server must send ' +
        '`Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`',
    );
  }
  if (!p.sharedArrayBuffer) problems.push('SharedArrayBuffer is not available on the page');
  if (p.sharedMemory !== true) problems.push(`cannot create a shared WebAssembly.Memory: ${p.sharedMemory}`);
  if (p.compileStreaming !== true) {
    problems.push(
      `WebAssembly.compileStreaming of ${guestFile} failed (${p.compileStreaming}); ` +
        `its content type was ${p.wasmContentType}, it must be application/wasm`,
    );
  }
  if (problems.length > 0) throw new Error(`the test page is not usable:\n  ${problems.join('\n  ')}`);
  return p;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}
