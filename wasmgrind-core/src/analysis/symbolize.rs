//! Symbolization: from a [`Location`] to a function name a person can read and, where the
//! guest has DWARF line tables, the `file:line:column` of the source.
//!
//! A [`Symbolizer`] is built from the guest's **original** module bytes. It reads the
//! module's `.debug_*` custom sections with wasmparser and hands them to `addr2line` (which
//! parses DWARF with gimli); function names are demangled with `rustc-demangle` (Rust's
//! legacy `_ZN…E` and v0 `_R…` schemes, shown without the hash). A module without DWARF
//! gives a symbolizer that only demangles.
//!
//! # Addresses
//!
//! DWARF for WebAssembly addresses an instruction by its byte offset from the start of the
//! code section's payload (the first byte after the section's id and size, that is, the
//! function count), which is exactly [`Location::code_offset`]. But the instrumenter
//! computes `code_offset` on the **patched** module, and the patcher appends three
//! functions to the code section: every original body is copied byte for byte, yet the
//! function count grows, and when its LEB128 gets longer (for example from 126 to 129
//! functions, one byte to two) every body moves. Build the symbolizer with
//! [`Symbolizer::for_patched`] from both modules and it
//! maps each offset of the patched module back to the original one, function by
//! function; offsets in the functions the patcher added resolve to no source. A
//! symbolizer built with [`Symbolizer::new`] alone takes offsets as offsets of the module
//! it was built from.
//!
//! # Inlining
//!
//! Optimized Rust inlines a lot, and an access often sits in an inlined function (a
//! `ptr::write_volatile`, an `AtomicU32::load`, a helper of the user's). A [`Frame`] is the
//! frame of the physical wasm function: its name comes from the name section and its
//! `file:line` is the position in that function's own source (where it called the
//! outermost inlined function). The inlined calls, innermost first, are
//! [`Frame::inlined`].

use std::ops::Range;
use std::sync::Arc;

use gimli::Reader as _;
use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

use crate::location::Location;

/// The DWARF reader: the section bytes are owned (shared), so a [`Symbolizer`] borrows
/// nothing.
type Reader = gimli::EndianArcSlice<gimli::LittleEndian>;

/// Why a [`Symbolizer`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    /// The bytes are not a WebAssembly module wasmparser can read.
    #[error("cannot read the module: {0}")]
    Wasm(#[from] wasmparser::BinaryReaderError),
    /// The module's `.debug_*` sections are not valid DWARF.
    #[error("cannot read the module's DWARF: {0}")]
    Dwarf(#[from] gimli::Error),
    /// The patched module given to [`Symbolizer::for_patched`] does not start with the original
    /// module's function bodies.
    #[error("the patched module does not match the original: {0}")]
    NotPatchedFrom(String),
}

/// One inlined call of a [`Frame`]: a function the compiler inlined into the physical one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InlinedFrame {
    /// The inlined function's name as DWARF gives it (with `line-tables-only` debug info,
    /// often unqualified, such as `write_volatile<u32>`), demangled if it was mangled.
    pub function: Option<String>,
    /// The source file of the position, relative to the compilation directory when it lies
    /// under it.
    pub file: Option<String>,
    /// The source line (1-based).
    pub line: Option<u32>,
    /// The source column (1-based).
    pub column: Option<u32>,
}

/// A [`Location`] resolved for a report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// The function, demangled and without the hash (`locks::counter::bump`); the raw name
    /// if it does not demangle; DWARF's name if the name section has none.
    pub function: Option<String>,
    /// The function's name as in the name section (often mangled).
    pub raw_function: Option<String>,
    /// The source file, relative to the compilation directory when it lies under it
    /// (`src/lib.rs`), else as DWARF records it (`/rustc/…/library/core/src/ptr/mod.rs`).
    pub file: Option<String>,
    /// The source line (1-based), in `function`'s own source.
    pub line: Option<u32>,
    /// The source column (1-based).
    pub column: Option<u32>,
    /// The instruction's offset in the code section, as in the [`Location`].
    pub code_offset: u32,
    /// The instruction as text, as in the [`Location`].
    pub instr: String,
    /// The functions inlined at this instruction, innermost first: the first one's
    /// position is the instruction's, each next one's the position of the call to the
    /// previous one, and the last one was called from `file:line`. Empty when nothing was
    /// inlined or the module has no DWARF.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlined: Vec<InlinedFrame>,
}

impl Frame {
    /// The frame of `location` without debug information: the name demangled, no source
    /// position.
    pub fn from_location(location: &Location) -> Frame {
        Frame {
            function: location.func_name.as_deref().map(demangle),
            raw_function: location.func_name.clone(),
            file: None,
            line: None,
            column: None,
            code_offset: location.code_offset,
            instr: location.instr.clone(),
            inlined: Vec::new(),
        }
    }
}

/// Demangles a Rust symbol (legacy `_ZN…E` or v0 `_R…`), without the hash suffix
/// (`{:#}`); returns any other name unchanged.
pub fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_string(),
    }
}

/// Resolves [`Location`]s of one guest to [`Frame`]s. See the [module docs](self).
pub struct Symbolizer {
    /// The DWARF of the module, if it has any.
    dwarf: Option<addr2line::Context<Reader>>,
    /// The byte ranges of the original module's function bodies (from their locals
    /// declaration to their end), relative to the code section's payload.
    bodies: Vec<Range<u32>>,
    /// The same ranges in the module the locations come from, when it is not the original
    /// (see [`Symbolizer::for_patched`]); its first `bodies.len()` bodies are the original's.
    located_bodies: Option<Vec<Range<u32>>>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("has_dwarf", &self.has_dwarf())
            .field("functions", &self.bodies.len())
            .field("patched", &self.located_bodies.is_some())
            .finish()
    }
}

impl Symbolizer {
    /// Reads the original module: its DWARF, if it has any, and where its function bodies
    /// are. Locations are taken to be offsets in this module's code section; build it
    /// with [`Symbolizer::for_patched`] when they come from the patched module.
    pub fn new(original: &[u8]) -> Result<Symbolizer, SymbolizeError> {
        let mut debug: Vec<(&str, &[u8])> = Vec::new();
        let bodies = read_module(original, Some(&mut debug))?;
        let dwarf = if debug.iter().any(|(name, _)| *name == ".debug_info") {
            let sections = gimli::Dwarf::load(|id| -> Result<Reader, gimli::Error> {
                let data = debug
                    .iter()
                    .find(|(name, _)| *name == id.name())
                    .map_or(&[][..], |(_, data)| *data);
                Ok(gimli::EndianArcSlice::new(
                    Arc::from(data),
                    gimli::LittleEndian,
                ))
            })?;
            Some(addr2line::Context::from_dwarf(sections)?)
        } else {
            None
        };
        Ok(Symbolizer {
            dwarf,
            bodies,
            located_bodies: None,
        })
    }

    /// Reads the original module like [`Symbolizer::new`], and takes locations as offsets
    /// in `patched`'s code section: `patched` is the patcher's output for `original`, the
    /// module the instrumenter was given (see the [module docs](self#addresses)).
    ///
    /// `patched` must begin its code section with the original's function bodies, byte
    /// for byte (the patcher's invariant), and may add functions after them; otherwise
    /// this fails with [`SymbolizeError::NotPatchedFrom`]. An offset is mapped to the same
    /// place in the same original body, so it does not matter how far the bodies moved.
    pub fn for_patched(original: &[u8], patched: &[u8]) -> Result<Symbolizer, SymbolizeError> {
        let mut symbolizer = Symbolizer::new(original)?;
        let located = read_module(patched, None)?;
        if located.len() < symbolizer.bodies.len() {
            return Err(SymbolizeError::NotPatchedFrom(format!(
                "it has {} function bodies, the original {}",
                located.len(),
                symbolizer.bodies.len()
            )));
        }
        let (original_code, patched_code) = (code_payload(original)?, code_payload(patched)?);
        for (i, (a, b)) in symbolizer.bodies.iter().zip(&located).enumerate() {
            if body(original_code, a) != body(patched_code, b) {
                return Err(SymbolizeError::NotPatchedFrom(format!(
                    "function body {i} differs"
                )));
            }
        }
        symbolizer.located_bodies = Some(located);
        Ok(symbolizer)
    }

    /// Whether the module has DWARF (`.debug_info`), so frames can get `file:line`.
    pub fn has_dwarf(&self) -> bool {
        self.dwarf.is_some()
    }

    /// The address DWARF knows the instruction at `code_offset` by, or `None` if it lies in
    /// no original function body (a function the patcher added).
    pub fn dwarf_address(&self, code_offset: u32) -> Option<u32> {
        let Some(located) = &self.located_bodies else {
            return Some(code_offset);
        };
        let i = located.partition_point(|body| body.end <= code_offset);
        let body = located.get(i)?;
        let original = self.bodies.get(i)?;
        if !body.contains(&code_offset) {
            return None;
        }
        Some(code_offset - body.start + original.start)
    }

    /// Resolves `location`: the demangled name and, with DWARF, the source position and
    /// the inlined calls.
    pub fn frame(&self, location: &Location) -> Frame {
        let mut frame = Frame::from_location(location);
        let (Some(dwarf), Some(address)) = (&self.dwarf, self.dwarf_address(location.code_offset))
        else {
            return frame;
        };
        let address = u64::from(address);
        let comp_dir = dwarf
            .find_dwarf_and_unit(address)
            .skip_all_loads()
            .and_then(|unit| {
                let dir = unit.comp_dir.as_ref()?.to_string_lossy().ok()?;
                Some(dir.into_owned())
            });
        let mut frames: Vec<InlinedFrame> = Vec::new();
        if let Ok(mut iter) = dwarf.find_frames(address).skip_all_loads() {
            while let Ok(Some(f)) = iter.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|name| name.raw_name().ok())
                    .map(|name| demangle(&name));
                let (file, line, column) = match f.location {
                    Some(l) => (
                        l.file.map(|file| relative(file, comp_dir.as_deref())),
                        l.line,
                        l.column,
                    ),
                    None => (None, None, None),
                };
                frames.push(InlinedFrame {
                    function,
                    file,
                    line,
                    column,
                });
            }
        }
        if let Some(physical) = frames.pop() {
            if frame.function.is_none() {
                frame.function = physical.function;
            }
            frame.file = physical.file;
            frame.line = physical.line;
            frame.column = physical.column;
            frame.inlined = frames;
        }
        frame
    }
}

/// `file` relative to `comp_dir` if it lies under it.
fn relative(file: &str, comp_dir: Option<&str>) -> String {
    if let Some(dir) = comp_dir.filter(|d| !d.is_empty()) {
        let dir = dir.trim_end_matches('/');
        if let Some(rest) = file.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) {
            return rest.to_string();
        }
    }
    file.to_string()
}

/// Reads a module's function body ranges (relative to the code section's payload) and,
/// if `debug` is given, collects its `.debug_*` custom sections into it.
fn read_module<'a>(
    wasm: &'a [u8],
    mut debug: Option<&mut Vec<(&'a str, &'a [u8])>>,
) -> Result<Vec<Range<u32>>, SymbolizeError> {
    let mut bodies = Vec::new();
    let mut code_start = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::CodeSectionStart {
                unchecked_range, ..
            } => code_start = unchecked_range.start,
            Payload::CodeSectionEntry(body) => {
                let range = body.range();
                // A module is far smaller than 4 GiB; the offsets fit.
                bodies.push((range.start - code_start) as u32..(range.end - code_start) as u32);
            }
            Payload::CustomSection(section) if section.name().starts_with(".debug_") => {
                if let Some(debug) = debug.as_deref_mut() {
                    debug.push((section.name(), section.data()));
                }
            }
            _ => {}
        }
    }
    Ok(bodies)
}

/// The payload of a module's code section (empty without one).
fn code_payload(wasm: &[u8]) -> Result<&[u8], SymbolizeError> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionStart {
            unchecked_range, ..
        } = payload?
        {
            let range = unchecked_range.start as usize..unchecked_range.end as usize;
            return Ok(wasm.get(range).unwrap_or_default());
        }
    }
    Ok(&[])
}

/// The bytes of a function body, given its range in the code section's payload.
fn body<'a>(code: &'a [u8], range: &Range<u32>) -> Option<&'a [u8]> {
    code.get(range.start as usize..range.end as usize)
}
