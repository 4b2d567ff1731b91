//! Locations: where in the user's original program an event happened.
//!
//! The instrumenter passes every hook a `loc: i32`, an index into the location table it
//! returns. An entry names the function (index in the original module's function index
//! space, and its name from the name section) and the instruction. `code_offset` is the
//! byte offset of the instruction from the start of the code section's payload, the same
//! address DWARF uses for WebAssembly, so a location can later be resolved to `file:line`.

use serde::{Deserialize, Serialize};

/// Index of an entry in a location table, as passed to the hooks.
pub type LocationId = u32;

/// One entry of the location table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Index of the function in the original module's function index space (imports first).
    pub func_index: u32,
    /// The function's name from the name section, if it has one.
    pub func_name: Option<String>,
    /// Offset of the instruction from the start of the code section's payload (DWARF's
    /// address space for WebAssembly).
    pub code_offset: u32,
    /// The instruction as text, for example `i32.load offset=8` or `call thread_create`.
    pub instr: String,
}
