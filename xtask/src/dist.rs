//! `cargo xtask dist`: builds `pkg/`, the npm package of the JS runtime.
//!
//! 1. builds `wasmgrind-js` for wasm32 with the pinned nightly, and the `-Z build-std`
//!    and shared-memory RUSTFLAGS of the guests ([`toolchain::GuestConfig`], read from
//!    `guests/.cargo/config.toml`) with a larger maximum memory, into
//!    `target/wasmgrind-js/`;
//! 2. fails unless its memory is imported and shared ([`toolchain::check_shared_memory`]);
//! 3. generates the bindings with `wasm-bindgen-cli-support` (as a library, target `web`,
//!    with TypeScript declarations) into `pkg/` and checks the shared memory again on the
//!    output, then applies `wasmgrind_patch::refresh_bounds` to it (the utility instances
//!    of all threads share that memory, and any of them may grow it);
//! 4. copies the JS runtime (`wasmgrind-js/js/`: `wasmgrind.js`, `wgrind_worker.js`,
//!    `worker.js`, `wasi.js`, `shim.js`, `node_shim.js`, `no_node.js`, `cli.js`, `wasmgrind.d.ts`,
//!    `README.md`) and writes `package.json`, whose `imports` map `#node-shim` to
//!    `node_shim.js` in Node.js and to `no_node.js` in browsers, so that bundles for
//!    browsers contain no `node:` module;
//! 5. replaces `pkg/worker.js`, the thread worker, by one script with the modules it
//!    imports inlined ([`bundle_worker`]), and writes the same code as `pkg/worker.cjs`, a
//!    CommonJS script that Node.js starts: every thread of a run boots a worker, and a
//!    worker that loads one script instead of four ES modules boots faster (measured on
//!    64 threads started at once: 34 ms of CPU time per worker in Node.js before, 23
//!    after; in Chromium, whose test server does not cache, the 64-thread start went from
//!    1215 to 857 ms).
//!
//! `pkg/` is deleted first, so it never holds files of an older build.

use std::fs;
use std::path::{Path, PathBuf};

use crate::toolchain;
use crate::util::{self, root, Result};

/// The files of `wasmgrind-js/js/` that `pkg/` ships.
pub const JS_FILES: [&str; 10] = [
    "wasmgrind.js",
    "wgrind_worker.js",
    "worker.js",
    "wasi.js",
    "shim.js",
    "node_shim.js",
    "no_node.js",
    "cli.js",
    "wasmgrind.d.ts",
    "README.md",
];

/// The largest utility memory in bytes: all of a 32-bit memory.
pub const UTILITY_MAX_MEMORY: u64 = 1 << 32;

/// The stem of the wasm-bindgen output (`wasmgrind_js.js`, `wasmgrind_js_bg.wasm`).
pub const BINDGEN_STEM: &str = "wasmgrind_js";

const HELP: &str = "\
cargo xtask dist [--debug]

Builds pkg/: wasmgrind-js for wasm32 (shared memory, pinned nightly), its wasm-bindgen
bindings, the JS runtime, cli.js, package.json, types and README.

  --debug   build wasmgrind-js without optimizations (faster to build, slower to run)
";

/// Entry point of `cargo xtask dist`.
pub fn run(args: &[String]) -> Result {
    let mut release = true;
    for a in args {
        match a.as_str() {
            "--debug" => release = false,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}").into()),
        }
    }
    build(release)?;
    Ok(())
}

/// The `pkg/` directory.
pub fn pkg_dir() -> PathBuf {
    root().join("pkg")
}

/// Builds `pkg/` and returns its path.
pub fn build(release: bool) -> Result<PathBuf> {
    let wasm = build_utility(release)?;
    toolchain::check_shared_memory(&wasm)?;
    let pkg = pkg_dir();
    if pkg.exists() {
        fs::remove_dir_all(&pkg).map_err(|e| format!("cannot remove {}: {e}", pkg.display()))?;
    }
    fs::create_dir_all(&pkg).map_err(|e| format!("cannot create {}: {e}", pkg.display()))?;
    bindgen(&wasm, &pkg)?;
    let out_wasm = pkg.join(format!("{BINDGEN_STEM}_bg.wasm"));
    check_bindgen_output(&out_wasm)?;
    refresh_bounds(&out_wasm)?;
    copy_js(&pkg)?;
    bundle_worker(&pkg)?;
    write_package_json(&pkg)?;
    eprintln!("xtask: wrote {}", pkg.display());
    Ok(pkg)
}

/// Builds the wasm32 utility module and returns the path of `wasmgrind_js.wasm`.
fn build_utility(release: bool) -> Result<PathBuf> {
    toolchain::ensure_nightly()?;
    let target_dir = root().join("target").join("wasmgrind-js");
    let config = toolchain::GuestConfig::load()?;
    let mut cmd = toolchain::nightly_cargo();
    // The recorder keeps a run's events in the utility memory: allow it the whole 4 GiB
    // of a 32-bit memory (wasm-ld takes the last `--max-memory`).
    let max_memory = format!("link-arg=--max-memory={UTILITY_MAX_MEMORY}");
    cmd.current_dir(root())
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            config.encoded_rustflags(&["-C", &max_memory]),
        )
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--package",
            "wasmgrind-js",
            "--lib",
            "--target",
            toolchain::WASM_TARGET,
        ])
        .arg(config.build_std_arg());
    if release {
        cmd.arg("--release");
    }
    util::run(&mut cmd)?;
    let wasm = target_dir
        .join(toolchain::WASM_TARGET)
        .join(if release { "release" } else { "debug" })
        .join("wasmgrind_js.wasm");
    if !wasm.exists() {
        return Err(format!("the build did not produce {}", wasm.display()).into());
    }
    Ok(wasm)
}

/// Runs wasm-bindgen (target `web`, TypeScript declarations) on `wasm` into `pkg`.
fn bindgen(wasm: &Path, pkg: &Path) -> Result {
    eprintln!(
        "xtask: wasm-bindgen {} -> {}",
        wasm.display(),
        pkg.display()
    );
    let mut b = wasm_bindgen_cli_support::Bindgen::new();
    b.input_path(wasm)
        .out_name(BINDGEN_STEM)
        .typescript(true)
        .web(true)
        .map_err(|e| format!("wasm-bindgen: {e:#}"))?;
    b.generate(pkg)
        .map_err(|e| format!("wasm-bindgen failed on {}: {e:#}", wasm.display()))?;
    Ok(())
}

/// Applies `wasmgrind_patch::refresh_bounds` to the utility module: its instances, one
/// per thread, share a memory that any of them may grow.
fn refresh_bounds(path: &Path) -> Result {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let out = wasmgrind_patch::refresh_bounds(&bytes)
        .map_err(|e| format!("{}: refresh_bounds: {e}", path.display()))?;
    fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

/// Fails unless the bindgen output imports a shared memory: the JS runtime runs one
/// utility instance per thread on it.
fn check_bindgen_output(path: &Path) -> Result {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    wasmgrind_patch::memory_limits(&bytes).map_err(|problem| {
        format!(
            "{}: {problem}; the utility module must import a shared memory (it is built with \
             the RUSTFLAGS of {})",
            path.display(),
            toolchain::GUEST_CONFIG
        )
    })?;
    Ok(())
}

fn copy_js(pkg: &Path) -> Result {
    let src = root().join("wasmgrind-js").join("js");
    for name in JS_FILES {
        let from = src.join(name);
        fs::copy(&from, pkg.join(name))
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), pkg.display()))?;
    }
    Ok(())
}

/// The modules of the thread worker, in the order the bundle defines them: `worker.js`
/// last, after everything it imports.
const WORKER_MODULES: [&str; 4] = ["shim.js", "wasi.js", "wasmgrind_js.js", "worker.js"];

/// What stands for `import('#node-shim')` in `worker.cjs`: the worker uses only the port.
const CJS_NODE_SHIM: &str =
    "Promise.resolve({ available: true, parentPort: require('node:worker_threads').parentPort })";

/// Rewrites `pkg/worker.js` as one script: the modules it imports (`shim.js`, `wasi.js`
/// and the wasm-bindgen glue) and then itself, with their static imports of each other
/// and their `export` keywords taken out, in one module scope (their top-level names are
/// distinct; a clash would fail the worker's first start, which every test does). Also
/// writes `pkg/worker.cjs`, the same code as a CommonJS script for Node.js, which gets
/// its port from `require` instead of `#node-shim`.
fn bundle_worker(pkg: &Path) -> Result {
    let mut body = String::new();
    for name in WORKER_MODULES {
        let path = pkg.join(name);
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        body.push_str(&format!("// ---- {name}\n"));
        body.push_str(&unmodule(&text).map_err(|e| format!("{}: {e}", path.display()))?);
        body.push('\n');
    }
    let head = "// Generated by `cargo xtask dist` from wasmgrind-js/js/worker.js and the modules it\n\
                // imports (shim.js, wasi.js, the wasm-bindgen glue), inlined: a thread worker loads\n\
                // one script. worker.cjs is the same code for Node.js. Edit the sources, not this.\n";
    let esm = format!("{head}{body}export {{}};\n");
    let node_shim = "import('#node-shim')";
    if !body.contains(node_shim) {
        return Err(format!("the thread worker's modules no longer contain `{node_shim}`").into());
    }
    let cjs = format!(
        "'use strict';\n{head}{}",
        body.replace(node_shim, CJS_NODE_SHIM)
    );
    for (name, text) in [("worker.js", esm), ("worker.cjs", cjs)] {
        let path = pkg.join(name);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// `text`, an ES module of the package, as plain script: its static imports of the
/// package's own modules (`import { a, b } from './x.js';`, over one or more lines) and
/// its `export { ... };` lines removed, and `export ` taken off its declarations. Fails on
/// any other import or export, which the bundle could not keep.
fn unmodule(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("import {") || line.starts_with("import{") {
            // Up to the line that ends the statement.
            let mut last = line;
            while !last.trim_end().ends_with(';') {
                last = lines
                    .next()
                    .ok_or_else(|| format!("unterminated import: `{line}`"))?;
            }
            if !last.contains("from './") {
                return Err(format!("an import of another package: `{last}`"));
            }
            continue;
        }
        if line.starts_with("export {") && line.trim_end().ends_with(';') {
            continue;
        }
        let declaration = ["function ", "async function ", "const ", "let ", "class "]
            .iter()
            .find_map(|d| {
                line.strip_prefix("export ")
                    .filter(|rest| rest.starts_with(d))
            });
        if let Some(rest) = declaration {
            out.push_str(rest);
        } else if line.starts_with("import ") || line.starts_with("export ") {
            return Err(format!("cannot inline `{line}`"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

/// The version of the workspace (from xtask's own manifest, which inherits it).
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn package_json() -> String {
    format!(
        r##"{{
  "name": "wasmgrind",
  "version": "{VERSION}",
  "description": "Run a multithreaded WebAssembly module in Node.js or a browser and trace what its threads did",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./wasmgrind.js",
  "types": "./wasmgrind.d.ts",
  "exports": {{
    ".": {{
      "types": "./wasmgrind.d.ts",
      "default": "./wasmgrind.js"
    }},
    "./wgrind_worker.js": "./wgrind_worker.js",
    "./worker.js": "./worker.js",
    "./{BINDGEN_STEM}.js": {{
      "types": "./{BINDGEN_STEM}.d.ts",
      "default": "./{BINDGEN_STEM}.js"
    }},
    "./{BINDGEN_STEM}_bg.wasm": "./{BINDGEN_STEM}_bg.wasm",
    "./package.json": "./package.json"
  }},
  "imports": {{
    "#node-shim": {{
      "browser": "./no_node.js",
      "node": "./node_shim.js",
      "default": "./no_node.js"
    }}
  }},
  "bin": {{
    "wasmgrind": "./cli.js"
  }},
  "files": [
    "wasmgrind.js",
    "wasmgrind.d.ts",
    "wgrind_worker.js",
    "worker.js",
    "worker.cjs",
    "wasi.js",
    "shim.js",
    "node_shim.js",
    "no_node.js",
    "cli.js",
    "{BINDGEN_STEM}.js",
    "{BINDGEN_STEM}.d.ts",
    "{BINDGEN_STEM}_bg.wasm",
    "{BINDGEN_STEM}_bg.wasm.d.ts",
    "README.md"
  ],
  "engines": {{
    "node": ">=20"
  }}
}}
"##
    )
}

fn write_package_json(pkg: &Path) -> Result {
    let path = pkg.join("package.json");
    fs::write(&path, package_json())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Imports of the package's modules (one line or several) and `export { ... };` go,
    /// declarations lose `export`; anything else that a script cannot hold is refused.
    #[test]
    fn unmodule_keeps_the_code_and_drops_the_module_syntax() {
        let module = "import { a } from './a.js';\n\
                      import {\n  b,\n  c,\n} from './b.js';\n\
                      export const x = 1;\n\
                      export function f() {\n  return import('#node-shim');\n}\n\
                      export async function g() {}\n\
                      export class K {}\n\
                      let y = 2;\n\
                      export { f as default };\n";
        assert_eq!(
            unmodule(module).unwrap(),
            "const x = 1;\nfunction f() {\n  return import('#node-shim');\n}\n\
             async function g() {}\nclass K {}\nlet y = 2;\n"
        );
        for bad in [
            "import { a } from 'other-package';\n",
            "import a from './a.js';\n",
            "export default 3;\n",
            "import {\n a,\n",
        ] {
            assert!(unmodule(bad).is_err(), "accepted {bad:?}");
        }
    }

    /// The thread worker's own sources can be inlined (the glue is checked by the build).
    #[test]
    fn the_worker_sources_can_be_inlined() {
        let src = root().join("wasmgrind-js").join("js");
        for name in ["shim.js", "wasi.js", "worker.js"] {
            let text = fs::read_to_string(src.join(name)).unwrap();
            let script = unmodule(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!script.contains("\nexport "), "{name} keeps an export");
        }
    }

    #[test]
    fn package_json_is_valid_and_complete() {
        let json: serde_json::Value =
            serde_json::from_str(&package_json()).expect("package.json is not valid JSON");
        let text = |v: &serde_json::Value| -> String {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_string()
        };
        assert_eq!(json["name"], "wasmgrind");
        assert_eq!(json["version"], VERSION);
        assert_eq!(json["type"], "module");
        // The files list is exactly the JS runtime and the wasm-bindgen output.
        let mut files: Vec<String> = json["files"]
            .as_array()
            .expect("`files` is an array")
            .iter()
            .map(text)
            .collect();
        files.sort();
        let mut expected: Vec<String> = JS_FILES.iter().map(|f| f.to_string()).collect();
        expected.push("worker.cjs".to_string());
        expected.extend(
            [".js", ".d.ts", "_bg.wasm", "_bg.wasm.d.ts"].map(|ext| format!("{BINDGEN_STEM}{ext}")),
        );
        expected.sort();
        assert_eq!(files, expected);
        // Every path the manifest points to is shipped (package.json itself always is).
        let shipped = |path: &str| {
            let name = path
                .strip_prefix("./")
                .unwrap_or_else(|| panic!("`{path}` is not relative to the package"));
            assert!(
                name == "package.json" || files.iter().any(|f| f == name),
                "`{path}` is not in `files`"
            );
        };
        shipped(&text(&json["main"]));
        shipped(&text(&json["types"]));
        assert_eq!(json["bin"]["wasmgrind"], "./cli.js");
        shipped(&text(&json["bin"]["wasmgrind"]));
        let exports = json["exports"].as_object().expect("`exports` is an object");
        assert!(exports.contains_key("."), "no main export");
        for (key, target) in exports {
            let targets: Vec<String> = match target {
                serde_json::Value::Object(conditions) => conditions.values().map(text).collect(),
                other => vec![text(other)],
            };
            assert!(!targets.is_empty(), "export `{key}` has no target");
            for t in targets {
                shipped(&t);
            }
        }
        // Node.js gets the Node-only code; browsers, and anything else, do not.
        let node_shim = &json["imports"]["#node-shim"];
        assert_eq!(node_shim["browser"], "./no_node.js");
        assert_eq!(node_shim["node"], "./node_shim.js");
        assert_eq!(node_shim["default"], "./no_node.js");
        for target in node_shim
            .as_object()
            .expect("`#node-shim` has conditions")
            .values()
        {
            shipped(&text(target));
        }
        assert_eq!(json["engines"]["node"], ">=20");
    }
}
