//! Checks that the function the user asked to run exists and takes and returns nothing,
//! and tells which thread ABI a module uses ([`module_abi`]).

use wasmparser::{CompositeInnerType, ExternalKind, Parser, Payload, TypeRef, ValType};

/// Why the function the user asked to run cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The bytes are not a module that wasmparser can read.
    #[error("not a valid WebAssembly module: {0}")]
    Parse(String),
    /// No export has that name.
    #[error("the module exports no function `{name}`; exported functions without parameters and results: {}", list(.candidates))]
    UnknownExport {
        /// The requested name.
        name: String,
        /// Exported functions that could be run instead.
        candidates: Vec<String>,
    },
    /// The export is not a function.
    #[error("`{name}` is exported as a {kind}, not a function; Wasmgrind runs an exported function without parameters and results")]
    NotAFunction {
        /// The requested name.
        name: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The function has parameters or results.
    #[error("`{name}` has the type {found}, but Wasmgrind runs only functions without parameters and results (`() -> ()`); export a wrapper that takes and returns nothing")]
    NotParameterless {
        /// The requested name.
        name: String,
        /// Its type as text.
        found: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn type_text(params: &[ValType], results: &[ValType]) -> String {
    let join = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if results.is_empty() {
        format!("({})", join(params))
    } else {
        format!("({}) -> ({})", join(params), join(results))
    }
}

/// The thread ABI of a module, read from its imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// Wasmgrind's own (`wasmgrind.thread_create`, ...): the module is patched.
    Wasmgrind,
    /// wasi-threads (`wasi.thread-spawn`) with WASI preview1: the module's libc gives each
    /// thread its stack and TLS, so it is not patched.
    Wasi,
}

impl Abi {
    /// The name the runtime uses (`runInfo.abi`, `result.abi`).
    pub fn name(self) -> &'static str {
        match self {
            Abi::Wasmgrind => "wasmgrind",
            Abi::Wasi => "wasi",
        }
    }
}

/// The module that wasi-threads' `thread-spawn` is imported from.
pub const WASI_THREADS_MODULE: &str = "wasi";
/// The module of the WASI preview1 functions.
pub const WASI_PREVIEW1_MODULE: &str = "wasi_snapshot_preview1";

/// Which ABI `wasm` uses: [`Abi::Wasi`] if it imports `wasi.thread-spawn` or anything of
/// `wasi_snapshot_preview1`, else [`Abi::Wasmgrind`].
pub fn module_abi(wasm: &[u8]) -> Result<Abi, EntryError> {
    let parse = |e: wasmparser::BinaryReaderError| EntryError::Parse(e.to_string());
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(parse)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(parse)?;
                    if (import.module == WASI_THREADS_MODULE && import.name == "thread-spawn")
                        || import.module == WASI_PREVIEW1_MODULE
                    {
                        return Ok(Abi::Wasi);
                    }
                }
                return Ok(Abi::Wasmgrind);
            }
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok(Abi::Wasmgrind)
}

/// The parts of a module that say what it exports and with which types.
struct Exports {
    /// (params, results) of every type index; non-function types are None.
    types: Vec<Option<(Vec<ValType>, Vec<ValType>)>>,
    /// Type index of every function, imports first.
    funcs: Vec<u32>,
    /// Every export: its name, kind and index.
    exports: Vec<(String, ExternalKind, u32)>,
}

impl Exports {
    fn read(wasm: &[u8]) -> Result<Exports, EntryError> {
        let parse = |e: wasmparser::BinaryReaderError| EntryError::Parse(e.to_string());
        let mut out = Exports {
            types: Vec::new(),
            funcs: Vec::new(),
            exports: Vec::new(),
        };
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(parse)? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group.map_err(parse)?.into_types() {
                            out.types.push(match &sub.composite_type.inner {
                                CompositeInnerType::Func(f) => {
                                    Some((f.params().to_vec(), f.results().to_vec()))
                                }
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        if let TypeRef::Func(ty) = import.map_err(parse)?.ty {
                            out.funcs.push(ty);
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        out.funcs.push(ty.map_err(parse)?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(parse)?;
                        out.exports
                            .push((export.name.to_string(), export.kind, export.index));
                    }
                }
                Payload::CodeSectionStart { .. } => break,
                _ => {}
            }
        }
        Ok(out)
    }

    /// The (params, results) of function `func`.
    fn sig(&self, func: u32) -> Option<&(Vec<ValType>, Vec<ValType>)> {
        let ty = *self.funcs.get(func as usize)?;
        self.types.get(ty as usize)?.as_ref()
    }

    /// The exported functions Wasmgrind can run: `() -> ()`, and not named `__…` (the
    /// toolchain's and the runtime's own).
    fn runnable(&self) -> Vec<String> {
        self.exports
            .iter()
            .filter(|(n, k, i)| {
                *k == ExternalKind::Func
                    && !n.starts_with("__")
                    && self
                        .sig(*i)
                        .is_some_and(|(p, r)| p.is_empty() && r.is_empty())
            })
            .map(|(n, _, _)| n.clone())
            .collect()
    }
}

/// The exported functions of `wasm` that Wasmgrind can run (`() -> ()`, not named
/// `__…`), in export order.
pub fn runnable_functions(wasm: &[u8]) -> Result<Vec<String>, EntryError> {
    Ok(Exports::read(wasm)?.runnable())
}

/// Checks that `wasm` exports a function `name` of type `() -> ()`.
pub fn check_entry(wasm: &[u8], name: &str) -> Result<(), EntryError> {
    let module = Exports::read(wasm)?;
    let Some((_, kind, index)) = module.exports.iter().find(|(n, _, _)| n == name) else {
        return Err(EntryError::UnknownExport {
            name: name.to_string(),
            candidates: module.runnable(),
        });
    };
    let kind_text = match kind {
        ExternalKind::Func => None,
        ExternalKind::Table => Some("table"),
        ExternalKind::Memory => Some("memory"),
        ExternalKind::Global => Some("global"),
        ExternalKind::Tag => Some("tag"),
        _ => Some("non-function item"),
    };
    if let Some(kind) = kind_text {
        return Err(EntryError::NotAFunction {
            name: name.to_string(),
            kind,
        });
    }
    match module.sig(*index) {
        Some((p, r)) if p.is_empty() && r.is_empty() => Ok(()),
        Some((p, r)) => Err(EntryError::NotParameterless {
            name: name.to_string(),
            found: type_text(p, r),
        }),
        None => Err(EntryError::Parse(format!(
            "export `{name}` names function {index}, which has no function type"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> Vec<u8> {
        wat::parse_str(
            r#"(module
                (func (export "run"))
                (func (export "with_param") (param i32))
                (func (export "with_result") (result i32) i32.const 0)
                (func (export "__hidden"))
                (global (export "g") i32 (i32.const 0)))"#,
        )
        .unwrap()
    }

    #[test]
    fn accepts_a_parameterless_function() {
        assert_eq!(check_entry(&module(), "run"), Ok(()));
    }

    #[test]
    fn unknown_export_lists_runnable_candidates() {
        let err = check_entry(&module(), "nope").unwrap_err();
        assert_eq!(
            err,
            EntryError::UnknownExport {
                name: "nope".into(),
                candidates: vec!["run".into()]
            }
        );
        assert!(err.to_string().contains("exports no function `nope`"));
        assert!(err.to_string().contains("`run`"));
    }

    #[test]
    fn params_and_results_are_refused() {
        let err = check_entry(&module(), "with_param").unwrap_err();
        assert!(err.to_string().contains("(i32)"), "{err}");
        let err = check_entry(&module(), "with_result").unwrap_err();
        assert!(err.to_string().contains("() -> (i32)"), "{err}");
    }

    #[test]
    fn a_global_is_not_a_function() {
        let err = check_entry(&module(), "g").unwrap_err();
        assert!(matches!(
            err,
            EntryError::NotAFunction { kind: "global", .. }
        ));
    }

    #[test]
    fn the_abi_follows_the_imports() {
        let wasi = wat::parse_str(
            r#"(module
                (import "wasi" "thread-spawn" (func (param i32) (result i32)))
                (import "env" "memory" (memory 1 1 shared)))"#,
        )
        .unwrap();
        assert_eq!(module_abi(&wasi), Ok(Abi::Wasi));
        let preview1 = wat::parse_str(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#,
        )
        .unwrap();
        assert_eq!(module_abi(&preview1), Ok(Abi::Wasi));
        let own = wat::parse_str(
            r#"(module (import "wasmgrind" "thread_create" (func (param i32 i32) (result i32))))"#,
        )
        .unwrap();
        assert_eq!(module_abi(&own), Ok(Abi::Wasmgrind));
        assert_eq!(module_abi(&module()), Ok(Abi::Wasmgrind));
        assert!(matches!(module_abi(b"nope"), Err(EntryError::Parse(_))));
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            check_entry(b"not wasm", "run"),
            Err(EntryError::Parse(_))
        ));
    }
}
