//! The JSON metadata that maps the dense ids of an exported trace back to threads, lock
//! addresses, variables and locations.

use serde::{Deserialize, Serialize};

use crate::location::{Location, LocationId};

use super::export::{DenseOp, DenseTrace, FormatError};
use super::{Event, Op};

/// Whether a dense lock id is a real lock or an atomic pseudo-lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// A lock of the program (from `start_lock`/`finish_lock`/`start_unlock`).
    Lock,
    /// A pseudo-lock standing for the atomic accesses to one address
    /// ([`ExportOptions::atomics_as_locks`](super::ExportOptions::atomics_as_locks)).
    Atomic,
}

/// What a dense lock id stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockInfo {
    /// The lock's address, or the address of the atomic accesses of a pseudo-lock.
    pub address: u32,
    /// Real lock or pseudo-lock.
    pub kind: LockKind,
}

/// What a dense variable id stands for: the address and width of the accesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VariableInfo {
    /// Address of the first byte.
    pub address: u32,
    /// Number of bytes.
    pub width: u32,
}

/// What a dense location id stands for: an entry of the instrumenter's location table.
///
/// In JSON the entry's fields follow `id`, and `function`, the demangled name
/// ([`LocationInfo::function`]), follows the raw `func_name`. Reading ignores `function`:
/// it is always derived from `func_name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "LocationJson", from = "LocationJson")]
pub struct LocationInfo {
    /// The entry's index in the location table ([`super::Event::location`]).
    pub id: LocationId,
    /// The entry.
    pub location: Location,
}

impl LocationInfo {
    /// The function's name as a user reads it: `func_name` demangled (both of rustc's
    /// manglings, without the hash), or as it is when it is not a Rust symbol; `None`
    /// when the function has no name.
    pub fn function(&self) -> Option<String> {
        self.location
            .func_name
            .as_deref()
            .map(crate::analysis::symbolize::demangle)
    }
}

/// [`LocationInfo`] as JSON: the fields of its [`Location`] after `id`, with `function`
/// next to `func_name`.
#[derive(Serialize, Deserialize)]
struct LocationJson {
    id: LocationId,
    func_index: u32,
    func_name: Option<String>,
    #[serde(default, skip_deserializing)]
    function: Option<String>,
    code_offset: u32,
    instr: String,
}

impl From<LocationInfo> for LocationJson {
    fn from(info: LocationInfo) -> LocationJson {
        let function = info.function();
        let Location {
            func_index,
            func_name,
            code_offset,
            instr,
        } = info.location;
        LocationJson {
            id: info.id,
            func_index,
            func_name,
            function,
            code_offset,
            instr,
        }
    }
}

impl From<LocationJson> for LocationInfo {
    fn from(json: LocationJson) -> LocationInfo {
        LocationInfo {
            id: json.id,
            location: Location {
                func_index: json.func_index,
                func_name: json.func_name,
                code_offset: json.code_offset,
                instr: json.instr,
            },
        }
    }
}

/// The sizes of the id spaces and the number of exported events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Counts {
    /// Number of dense thread ids.
    pub threads: u64,
    /// Number of dense lock ids, pseudo-locks included.
    pub locks: u64,
    /// Number of dense variable ids.
    pub variables: u64,
    /// Number of dense location ids ("no location" included, if it occurs).
    pub locations: u64,
    /// Number of exported events (pseudo-lock events included).
    pub events: u64,
}

/// Maps every dense id of an exported trace back; written as JSON next to RapidBin and
/// STD. The [module documentation](super) shows an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// [`Metadata::FORMAT_VERSION`].
    pub format_version: u32,
    /// Whether atomic accesses were exported as pseudo-lock brackets.
    pub atomics_as_locks: bool,
    /// The counts; each equals the length of its list.
    pub counts: Counts,
    /// `threads[n]` is the runtime's thread id of dense thread `n`.
    pub threads: Vec<u32>,
    /// `locks[n]` describes dense lock `n`.
    pub locks: Vec<LockInfo>,
    /// `variables[n]` describes dense variable `n`.
    pub variables: Vec<VariableInfo>,
    /// `locations[n]` is the location of dense location `n`, `None` (`null`) for events
    /// without a location.
    pub locations: Vec<Option<LocationInfo>>,
}

fn mismatch(what: &'static str, metadata: u64, trace: u64) -> Result<(), FormatError> {
    if metadata == trace {
        Ok(())
    } else {
        Err(FormatError::MetadataMismatch {
            what,
            metadata,
            trace,
        })
    }
}

impl Metadata {
    /// The version of the metadata format this crate writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// The metadata as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Plain structs with string keys: serialization cannot fail.
        serde_json::to_string_pretty(self).expect("trace metadata always serializes")
    }

    /// [`Metadata::to_json`] as UTF-8 bytes, written without a `String` in between: with
    /// one entry per variable, a long run's metadata can exceed what a JavaScript string
    /// holds (about 2^29 characters), so the runtime hands it on as bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("trace metadata always serializes")
    }

    /// Reads metadata from JSON and checks that it is consistent (known version, counts
    /// equal to the list lengths, no pseudo-locks unless `atomics_as_locks`).
    pub fn from_json(json: &str) -> Result<Metadata, FormatError> {
        let m: Metadata = serde_json::from_str(json).map_err(|e| FormatError::Json {
            message: e.to_string(),
        })?;
        m.validate()?;
        Ok(m)
    }

    /// Checks that the metadata is consistent with itself (see [`Metadata::from_json`]).
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.format_version != Self::FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                version: self.format_version,
            });
        }
        let c = &self.counts;
        mismatch("thread count", c.threads, self.threads.len() as u64)?;
        mismatch("lock count", c.locks, self.locks.len() as u64)?;
        mismatch("variable count", c.variables, self.variables.len() as u64)?;
        mismatch("location count", c.locations, self.locations.len() as u64)?;
        if !self.atomics_as_locks {
            let pseudo = self
                .locks
                .iter()
                .filter(|l| l.kind == LockKind::Atomic)
                .count();
            mismatch("number of atomic pseudo-locks", 0, pseudo as u64)?;
        }
        Ok(())
    }

    /// The location of dense location `dense`, or `None` if it stands for "no location"
    /// or is out of range.
    pub fn location(&self, dense: u32) -> Option<&LocationInfo> {
        self.locations.get(dense as usize)?.as_ref()
    }

    /// Maps a dense trace written with this metadata back to events with runtime thread
    /// ids, addresses and location-table indices.
    ///
    /// With `atomics_as_locks` every pseudo-lock bracket becomes one atomic access again,
    /// so the result equals the exported events. Without it the formats carry no atomic
    /// flag and every access comes back with `atomic: false`.
    pub fn resolve(&self, dense: &DenseTrace) -> Result<Vec<Event>, FormatError> {
        self.validate()?;
        let c = &self.counts;
        mismatch("thread count", c.threads, dense.threads.into())?;
        mismatch("lock count", c.locks, dense.locks.into())?;
        mismatch("variable count", c.variables, dense.variables.into())?;
        mismatch("event count", c.events, dense.events.len() as u64)?;

        let mut out = Vec::with_capacity(dense.events.len());
        let mut i = 0;
        while i < dense.events.len() {
            let e = &dense.events[i];
            dense.validate_event(i as u64, e)?;
            let location = self.resolve_location(i, e.location)?;
            let thread = self.threads[e.thread as usize];
            let bracket = |j: usize| FormatError::AtomicBracket { event: j as u64 };
            let op = match e.op {
                DenseOp::Acquire { lock }
                | DenseOp::Release { lock }
                | DenseOp::Request { lock }
                    if self.locks[lock as usize].kind == LockKind::Atomic =>
                {
                    // acq(P), access, rel(P), one thread, one location, P's address.
                    let DenseOp::Acquire { .. } = e.op else {
                        return Err(bracket(i));
                    };
                    let address = self.locks[lock as usize].address;
                    let access = dense.events.get(i + 1).ok_or(bracket(i))?;
                    let release = dense.events.get(i + 2).ok_or(bracket(i))?;
                    dense.validate_event(i as u64 + 1, access)?;
                    dense.validate_event(i as u64 + 2, release)?;
                    let same =
                        |x: &super::DenseEvent| x.thread == e.thread && x.location == e.location;
                    if !same(access) {
                        return Err(bracket(i + 1));
                    }
                    if !same(release) || release.op != (DenseOp::Release { lock }) {
                        return Err(bracket(i + 2));
                    }
                    let (var, is_read) = match access.op {
                        DenseOp::Read { var } => (var, true),
                        DenseOp::Write { var } => (var, false),
                        _ => return Err(bracket(i + 1)),
                    };
                    let v = self.variables[var as usize];
                    if v.address != address {
                        return Err(bracket(i + 1));
                    }
                    i += 2;
                    access_op(is_read, v, true)
                }
                DenseOp::Acquire { lock } => Op::Acquire {
                    lock: self.locks[lock as usize].address,
                },
                DenseOp::Release { lock } => Op::Release {
                    lock: self.locks[lock as usize].address,
                },
                DenseOp::Request { lock } => Op::Request {
                    lock: self.locks[lock as usize].address,
                },
                DenseOp::Read { var } => access_op(true, self.variables[var as usize], false),
                DenseOp::Write { var } => access_op(false, self.variables[var as usize], false),
                DenseOp::Fork { child } => Op::Fork {
                    child: self.threads[child as usize],
                },
                DenseOp::Join { child } => Op::Join {
                    child: self.threads[child as usize],
                },
            };
            out.push(Event {
                thread,
                op,
                location,
            });
            i += 1;
        }
        Ok(out)
    }

    fn resolve_location(
        &self,
        event: usize,
        dense: u32,
    ) -> Result<Option<LocationId>, FormatError> {
        match self.locations.get(dense as usize) {
            Some(entry) => Ok(entry.as_ref().map(|l| l.id)),
            None => Err(FormatError::IdOutOfRange {
                event: event as u64,
                kind: super::IdKind::Location,
                id: dense.into(),
                count: self.locations.len() as u64,
            }),
        }
    }
}

fn access_op(is_read: bool, v: VariableInfo, atomic: bool) -> Op {
    if is_read {
        Op::Read {
            addr: v.address,
            width: v.width,
            atomic,
        }
    } else {
        Op::Write {
            addr: v.address,
            width: v.width,
            atomic,
        }
    }
}
