// A crate made by `cargo xtask new-guest` builds as a user builds it (plain `cargo build
// --release` in its directory, with nothing but the files the command wrote) and runs under
// `node pkg/cli.js run`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { root, cliPath, runNode } from './helpers.mjs';

/** Where the crate is created; removed first, so every run starts from nothing. */
const crateDir = join(root, 'target', 'new-guest-test', 'my-guest');
/**
 * The build directory of `cargo xtask guests`: the crate is built with the same settings,
 * so the std rebuilt for shared memory (about a minute of work) is reused from there.
 */
const targetDir = join(root, 'target', 'guests-build');

/**
 * The environment of a user's shell: without the variables that the cargo running these
 * tests (`cargo xtask test`) exports, which would pick its toolchain, flags or target
 * directory. `CARGO_HOME` and `RUSTUP_HOME` say where the tools are and stay.
 */
function userEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    const build = /^(CARGO|RUSTC|RUSTDOC|RUSTFLAGS|RUSTUP_TOOLCHAIN|MAKEFLAGS|MFLAGS)/.test(key);
    if (!build || key === 'CARGO_HOME' || key === 'CARGO_TERM_COLOR') env[key] = value;
  }
  env.CARGO_TARGET_DIR = targetDir;
  return env;
}

function run(command, args, options) {
  const r = spawnSync(command, args, { encoding: 'utf8', ...options });
  assert.equal(r.error, undefined, `cannot start ${command}: ${r.error}`);
  assert.equal(r.status, 0, `${command} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

test('a crate made by `cargo xtask new-guest` builds and runs under cli.js run', async () => {
  rmSync(crateDir, { recursive: true, force: true });
  run('cargo', ['xtask', 'new-guest', crateDir], { cwd: root });
  for (const file of ['Cargo.toml', 'src/lib.rs', '.cargo/config.toml', 'rust-toolchain.toml']) {
    assert.ok(existsSync(join(crateDir, file)), `new-guest wrote ${file}`);
  }
  assert.equal(
    readFileSync(join(crateDir, '.cargo', 'config.toml'), 'utf8'),
    readFileSync(join(root, 'guests', '.cargo', 'config.toml'), 'utf8'),
  );

  // What a user runs: the toolchain file picks the nightly, the config file the rest.
  run('cargo', ['build', '--release'], { cwd: crateDir, env: userEnv() });
  const wasm = join(targetDir, 'wasm32-unknown-unknown', 'release', 'my_guest.wasm');
  assert.ok(existsSync(wasm), `the build wrote ${wasm}`);

  const out = join(crateDir, 'wasmgrind-out');
  const r = await runNode([cliPath, 'run', wasm, 'mutex_counter', '--out', out]);
  assert.equal(r.code, 0, `cli.js run failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /`mutex_counter` of .*my_guest\.wasm returned/);
  // 4 threads × 100 additions, and the main thread's check of the total.
  assert.match(r.stdout, /locks: +1 \(401 acquisitions\)/);
  assert.match(r.stdout, /found: +0 data race\(s\), 0 potential deadlock\(s\)/);
});
