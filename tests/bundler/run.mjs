// The bundler test: Wasmgrind as a dependency of a web app built with Vite.
//
//   node tests/bundler/run.mjs [--verbose]
//
// 1. builds the app of this directory (index.html, main.js, vite.config.js) for production,
//    through Vite's API with a logger that records every warning, into target/bundler/dist.
//    Any warning fails the test: the app is a few lines that import `wasmgrind`, so a warning
//    comes from the package (a `node:` module externalized for browsers, a worker Vite
//    cannot bundle, ...);
// 2. fails if the built JavaScript names a `node:` module or Vite's stand-in for one;
// 3. serves the build with COOP/COEP (tests/browser/server.mjs), opens it in Chromium
//    (tests/browser/browser.mjs) and runs `mutex_counter` of locks.wasm from the page's
//    main thread, which must resolve with status 'ok' and the trace that
//    guests/manifest.json expects;
// 4. runs it the same way on `vite preview` and on the dev server (`vite`), which checks
//    the headers that vite.config.js sets for them, as the book tells users to;
// 5. builds the same app with webpack 5 (webpack.config.js, through webpack's API) into
//    target/bundler/webpack-dist, where the same holds: no warning, no `node:` module, and
//    the scenario runs in Chromium (the page is webpack.html).
//
// The guest comes from target/guests/locks.wasm through a public directory in
// target/bundler, so that the app's directory stays as a user's would be.
//
// Needs `npm ci` here, the packed package installed here as a user installs it (`npm pack
// pkg`, then `npm install --no-save` of the tarball), target/guests/locks.wasm, and the npm
// packages of tests/browser; `cargo xtask test` does all of it (xtask/src/bundler.rs).

import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync, lstatSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadManifest, openTestPage } from '../browser/browser.mjs';
import { checkOk, summarize } from '../browser/trace_checks.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '..', '..');
/** Where the app is built (by Vite, by webpack), and the directory the guest is served from. */
const OUT_DIR = join(ROOT, 'target', 'bundler', 'dist');
const WEBPACK_OUT_DIR = join(ROOT, 'target', 'bundler', 'webpack-dist');
const PUBLIC_DIR = join(ROOT, 'target', 'bundler', 'public');
const GUEST = 'locks';
const SCENARIO = 'mutex_counter';
/** The page's own bound on the run, and the whole test's. */
const RUN_TIMEOUT_MS = 90_000;
const WATCHDOG_S = Number(process.env.WASMGRIND_BUNDLER_WATCHDOG || 240);

const verbose = process.argv.includes('--verbose');

const watchdog = setTimeout(() => {
  console.error(`bundler test: watchdog: the test took longer than ${WATCHDOG_S} s and was stopped`);
  process.exit(2);
}, WATCHDOG_S * 1000);
watchdog.unref();

/** Fails unless `node_modules/wasmgrind` is an installed copy (not a link) of today's pkg/. */
async function checkInstalledPackage() {
  const installed = join(here, 'node_modules', 'wasmgrind');
  const pkg = join(ROOT, 'pkg');
  if (!existsSync(join(pkg, 'package.json'))) throw new Error('pkg/ is missing (run `cargo xtask dist`)');
  if (!existsSync(join(installed, 'package.json'))) {
    throw new Error(
      'the wasmgrind package is not installed in tests/bundler: run `npm pack pkg`, then ' +
        '`npm install --no-save <the tarball>` in tests/bundler (cargo xtask test does it)',
    );
  }
  if (lstatSync(installed).isSymbolicLink()) {
    throw new Error('tests/bundler/node_modules/wasmgrind is a link; install the packed tarball instead');
  }
  for (const name of await readdir(pkg)) {
    const want = await readFile(join(pkg, name));
    const have = await readFile(join(installed, name)).catch(() => null);
    if (have === null || !want.equals(have)) {
      throw new Error(
        `the installed wasmgrind package is not today's pkg/ (${name} differs or is missing); ` +
          'pack and install it again',
      );
    }
  }
}

/**
 * A Vite logger that records every warning (and error) it prints, and the console's
 * warnings too, which a plugin may use directly. `stop()` gives the console back.
 */
async function recordingLogger() {
  const { createLogger } = await import('vite');
  const logger = createLogger(verbose ? 'info' : 'warn');
  const warnings = [];
  const record = (original) => (msg, options) => {
    warnings.push(String(msg));
    original(msg, options);
  };
  logger.warn = record(logger.warn.bind(logger));
  logger.warnOnce = record(logger.warnOnce.bind(logger));
  logger.error = record(logger.error.bind(logger));
  const consoleWarn = console.warn;
  console.warn = (...args) => {
    warnings.push(args.map(String).join(' '));
    consoleWarn(...args);
  };
  return { logger, warnings, stop: () => (console.warn = consoleWarn) };
}

/** What every mode shares: the app's directory (with its vite.config.js), the guest. */
function inlineConfig(logger) {
  return { root: here, publicDir: PUBLIC_DIR, customLogger: logger, logLevel: verbose ? 'info' : 'warn' };
}

/** The built JavaScript and HTML files that name a `node:` module or Vite's stand-in for one. */
async function nodeModulesInBuild(outDir) {
  const found = [];
  const walk = async (dir) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      const rel = path.slice(outDir.length + 1);
      if (e.isDirectory()) await walk(path);
      else if (/browser-external/.test(e.name)) found.push(`${rel}: Vite's stand-in for a Node.js module`);
      else if (/\.(m?js|html)$/.test(e.name)) {
        const text = await readFile(path, 'utf8');
        const names = [...new Set(text.match(/\bnode:[a-z_/]+|__vite-browser-external/g) ?? [])];
        if (names.length > 0) found.push(`${rel}: ${names.join(', ')}`);
      }
    }
  };
  await walk(outDir);
  return found;
}

let failed = 0;
function fail(what, lines) {
  failed++;
  console.log(`FAIL ${what}`);
  for (const l of lines) console.log(`     ${String(l).replace(/\n/g, '\n     ')}`);
}

/**
 * Opens the app at `url` (or the build served from `root`) in Chromium, runs the scenario
 * from the page and checks the result against the manifest's `expected`.
 */
async function runInChromium(label, where, guestFile, expected) {
  const pageLog = [];
  const log = (line) => {
    pageLog.push(line);
    if (verbose) console.error(`  | ${line}`);
  };
  let r;
  const { page, close } = await openTestPage({ ...where, log });
  try {
    if (!(await page.evaluate(() => globalThis.crossOriginIsolated === true))) {
      const message = 'the page is not cross-origin isolated: the COOP/COEP headers are missing';
      r = { ok: false, ms: 0, error: { kind: 'NotIsolated', message } };
    } else {
      r = await page.evaluate(
        ([url, fn, ms]) =>
          Promise.race([
            globalThis.wgTest.run(url, fn),
            new Promise((ok) => {
              const error = { kind: 'PageWatchdog', message: `no answer in ${ms} ms` };
              setTimeout(() => ok({ ok: false, ms, error }), ms);
            }),
          ]),
        [`/${guestFile}`, SCENARIO, RUN_TIMEOUT_MS],
      );
    }
  } finally {
    await close();
  }
  const wrong = [];
  let s = null;
  if (!r.ok) {
    wrong.push(`${r.error.kind}: ${r.error.message}`);
  } else {
    s = summarize(r.std, r.metadata);
    if (r.status !== 'ok') wrong.push(`status ${JSON.stringify(r.status)}, expected "ok"`);
    wrong.push(...checkOk(s, expected));
    if (r.detached !== 0) wrong.push(`${r.detached} detached thread(s)`);
  }
  if (wrong.length === 0) {
    console.log(
      `ok   ${GUEST}::${SCENARIO} ${label} (status: '${r.status}'; ${s.events} events, ` +
        `${s.forks} forks/${s.joins} joins, ${s.realLocks} lock/${s.acquisitions} acquisitions; ` +
        `${r.ms.toFixed(0)} ms)`,
    );
  } else {
    if (!verbose) wrong.push(...pageLog.slice(-20).map((l) => `page log | ${l}`));
    fail(`${GUEST}::${SCENARIO} ${label}`, wrong);
  }
}

async function main() {
  await checkInstalledPackage();
  const manifest = await loadManifest();
  const guest = manifest.guests[GUEST];
  const expected = guest.scenarios[SCENARIO];
  const guestPath = join(ROOT, 'target', 'guests', guest.file);
  if (!existsSync(guestPath)) throw new Error(`${guestPath} is missing (run \`cargo xtask guests\`)`);
  await rm(PUBLIC_DIR, { recursive: true, force: true });
  await mkdir(PUBLIC_DIR, { recursive: true });
  await copyFile(guestPath, join(PUBLIC_DIR, guest.file));
  const vite = await import('vite');

  // The production build, served by the browser tests' server.
  {
    const rec = await recordingLogger();
    const t0 = performance.now();
    try {
      await vite.build({ ...inlineConfig(rec.logger), build: { outDir: OUT_DIR, emptyOutDir: true } });
    } finally {
      rec.stop();
    }
    const ms = performance.now() - t0;
    if (rec.warnings.length === 0) console.log(`ok   vite build: no warnings (${ms.toFixed(0)} ms)`);
    else fail(`vite build printed ${rec.warnings.length} warning(s); the package must cause none`, rec.warnings);
    const nodeNames = await nodeModulesInBuild(OUT_DIR);
    if (nodeNames.length === 0) console.log('ok   the build contains no node: module');
    else fail('the build names Node.js modules, which browsers do not have', nodeNames);
    await runInChromium('in the build (dist/)', { root: OUT_DIR, path: 'index.html' }, guest.file, expected);
  }

  // The same build on `vite preview`, and the app on the dev server: both with the
  // headers of vite.config.js.
  for (const [label, start] of [
    ['on `vite preview`', (config) => vite.preview({ ...config, build: { outDir: OUT_DIR } })],
    [
      'on the dev server',
      async (config) => {
        const server = await vite.createServer(config);
        await server.listen();
        return server;
      },
    ],
  ]) {
    const rec = await recordingLogger();
    const listen = { host: '127.0.0.1', port: 0 };
    const config = { ...inlineConfig(rec.logger), server: listen, preview: listen };
    let server = null;
    try {
      server = await start(config);
      const url = server.resolvedUrls.local[0];
      await runInChromium(label, { url }, guest.file, expected);
    } finally {
      await server?.close();
      rec.stop();
    }
    if (rec.warnings.length > 0) fail(`Vite printed ${rec.warnings.length} warning(s) ${label}`, rec.warnings);
  }

  // webpack 5, with the same app and webpack.config.js, through its API.
  {
    const { default: webpack } = await import('webpack');
    const { default: config } = await import('./webpack.config.js');
    const t0 = performance.now();
    const output = { ...config.output, path: WEBPACK_OUT_DIR };
    const compiler = webpack({ ...config, context: here, output });
    const stats = await new Promise((ok, no) => compiler.run((e, st) => (e ? no(e) : ok(st))));
    await new Promise((ok) => compiler.close(ok));
    const ms = performance.now() - t0;
    const info = stats.toJson({ all: false, warnings: true, errors: true });
    const problems = [...info.errors, ...info.warnings].map((w) => w.message);
    if (problems.length === 0) console.log(`ok   webpack: no warnings (${ms.toFixed(0)} ms)`);
    else fail(`webpack printed ${problems.length} warning(s) or error(s); the package must cause none`, problems);
    const nodeNames = await nodeModulesInBuild(WEBPACK_OUT_DIR);
    if (nodeNames.length === 0) console.log('ok   the webpack build contains no node: module');
    else fail('the webpack build names Node.js modules, which browsers do not have', nodeNames);
    await copyFile(join(here, 'webpack.html'), join(WEBPACK_OUT_DIR, 'index.html'));
    await copyFile(guestPath, join(WEBPACK_OUT_DIR, guest.file));
    const where = { root: WEBPACK_OUT_DIR, path: 'index.html' };
    await runInChromium('in the webpack build', where, guest.file, expected);
  }

  console.log(failed === 0 ? 'bundler test passed' : `bundler test: ${failed} check(s) failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  // Exit explicitly: nothing left behind (a browser, a server) may keep the process alive.
  (code) => process.exit(code),
  (e) => {
    console.error(`bundler test: ${(e && e.stack) || e}`);
    process.exit(1);
  },
);
