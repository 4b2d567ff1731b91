//! Wasmgrind's own trace format: every [`Event`] exactly as recorded, so that a saved
//! run can be analyzed again with the same result.
//!
//! RapidBin and STD cannot carry everything: they have no atomic flag (without
//! [`ExportOptions::atomics_as_locks`](super::ExportOptions::atomics_as_locks)), no
//! read-modify-write, allocation or free, and they renumber threads, locks, addresses and
//! locations densely. This format keeps runtime thread ids, addresses, widths and the
//! location table indices as they are.
//!
//! # Layout
//!
//! All integers are little-endian and unsigned. A 24-byte header:
//!
//! | bytes | type | content |
//! |---|---|---|
//! | 0..8 | bytes | magic `WGTRACE\0` ([`MAGIC`]) |
//! | 8..12 | `u32` | format version, [`VERSION`] (1) |
//! | 12..16 | `u32` | reserved, 0 |
//! | 16..24 | `u64` | number of events, or [`UNFINISHED`] (`u64::MAX`) while a streamed file is being written |
//!
//! then one 20-byte record per event:
//!
//! | bytes | type | content |
//! |---|---|---|
//! | 0..4 | `u32` | the runtime's thread id |
//! | 4 | `u8` | op tag (below) |
//! | 5 | `u8` | flags: bit 0 atomic (reads and writes only), bit 1 has a location; other bits 0 |
//! | 6..8 | `u16` | reserved, 0 |
//! | 8..12 | `u32` | `lock`, `addr` or `child` |
//! | 12..16 | `u32` | `width` or `size`; 0 for the other ops |
//! | 16..20 | `u32` | location-table index; `u32::MAX` when flag bit 1 is clear |
//!
//! | tag | op | field 8..12 | field 12..16 |
//! |---|---|---|---|
//! | 0 | `Request` | lock | 0 |
//! | 1 | `Acquire` | lock | 0 |
//! | 2 | `Release` | lock | 0 |
//! | 3 | `Read` | addr | width |
//! | 4 | `Write` | addr | width |
//! | 5 | `Rmw` | addr | width |
//! | 6 | `Alloc` | addr | size |
//! | 7 | `Free` | addr | size |
//! | 8 | `Fork` | child | 0 |
//! | 9 | `Join` | child | 0 |
//! | 10 | `End` | 0 | 0 |
//! | 11 | `NotALock` | lock | 0 |
//!
//! The "has a location" flag, rather than a reserved value, marks an event without a
//! location, so every location index, `u32::MAX` included, is representable and
//! [`encode`] cannot fail.
//!
//! # Streaming
//!
//! A trace can be written while it is recorded: write [`header`]`(None)`, whose count is
//! [`UNFINISHED`], then append the records of each chunk of events with
//! [`encode_into`], and at the end overwrite the 8 bytes at [`COUNT_OFFSET`] with the
//! number of events as a little-endian `u64` ([`set_count`] does it for a buffer in
//! memory; a file is patched with one seek and write). A file whose count was never
//! patched (the writer was killed) still decodes: [`decode`] then reads every complete
//! record, and [`read_header`] reports the count as unknown.
//!
//! # Decoding
//!
//! [`decode`] checks everything and names the first problem in a [`NativeError`]: the
//! magic, the version, the header's length, that the number of records equals the
//! header's count (fewer is a truncation at the first missing event; more, or stray bytes
//! after the last event, a mismatch), an unknown op tag, and flag bits, reserved bytes and
//! unused fields that must be clear.

use super::{Event, Op};

/// The first 8 bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"WGTRACE\0";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// Length of the header in bytes.
pub const HEADER_LEN: usize = 24;
/// Length of one event record in bytes.
pub const RECORD_LEN: usize = 20;
/// Offset of the event count in the header.
pub const COUNT_OFFSET: usize = 16;
/// The event count of a streamed file whose writer has not finished it.
pub const UNFINISHED: u64 = u64::MAX;

/// Flag bit: the access is atomic.
const FLAG_ATOMIC: u8 = 1;
/// Flag bit: the event has a location.
const FLAG_LOCATION: u8 = 2;
/// The location field of an event without a location.
const NO_LOCATION: u32 = u32::MAX;

const TAG_REQUEST: u8 = 0;
const TAG_ACQUIRE: u8 = 1;
const TAG_RELEASE: u8 = 2;
const TAG_READ: u8 = 3;
const TAG_WRITE: u8 = 4;
const TAG_RMW: u8 = 5;
const TAG_ALLOC: u8 = 6;
const TAG_FREE: u8 = 7;
const TAG_FORK: u8 = 8;
const TAG_JOIN: u8 = 9;
const TAG_END: u8 = 10;
const TAG_NOT_A_LOCK: u8 = 11;

/// Why bytes are not a valid Wasmgrind trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativeError {
    /// The input does not start with [`MAGIC`].
    #[error("not a Wasmgrind trace: the file does not start with the magic bytes `WGTRACE\\0`")]
    BadMagic,
    /// The header is shorter than [`HEADER_LEN`] bytes.
    #[error("the Wasmgrind trace is truncated in its header: {len} bytes, but the header has 24")]
    TruncatedHeader {
        /// The input's length.
        len: usize,
    },
    /// The header names a version this build does not read.
    #[error(
        "the Wasmgrind trace has format version {version}, but this build reads only version \
         {VERSION}; use a matching Wasmgrind"
    )]
    UnsupportedVersion {
        /// The version in the header.
        version: u32,
    },
    /// The header's reserved field is not zero.
    #[error("the Wasmgrind trace header's reserved field is {value:#x}, not 0")]
    ReservedHeader {
        /// The field's value.
        value: u32,
    },
    /// The input ends before the header's count of events, or inside a record.
    #[error(
        "the Wasmgrind trace is truncated at event {event}: {bytes} of its 20 bytes are \
         present"
    )]
    Truncated {
        /// Position of the first incomplete or missing event (0-based).
        event: u64,
        /// How many of its bytes are present.
        bytes: usize,
    },
    /// A record has an op tag that is not in the table.
    #[error("unknown op tag {tag} at event {event} (known tags are 0 to {TAG_NOT_A_LOCK})")]
    UnknownOp {
        /// Position of the event (0-based).
        event: u64,
        /// The tag.
        tag: u8,
    },
    /// A record has flag bits or reserved bytes set that its op does not allow, or a
    /// field that must be 0 is not.
    #[error("invalid event {event}: {what}")]
    InvalidRecord {
        /// Position of the event (0-based).
        event: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The file holds more records than the header's count.
    #[error(
        "the Wasmgrind trace's header announces {header} events, but the file holds {records}"
    )]
    CountMismatch {
        /// The count in the header.
        header: u64,
        /// The number of complete records.
        records: u64,
    },
    /// The file goes on after the header's count of events, with less than a record.
    #[error("the Wasmgrind trace has {bytes} stray bytes after its {events} events")]
    TrailingBytes {
        /// The count in the header.
        events: u64,
        /// The number of bytes after the last event.
        bytes: usize,
    },
}

/// What the header of a trace says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format version.
    pub version: u32,
    /// The number of events, or `None` for a streamed file whose writer did not finish
    /// it ([`UNFINISHED`]).
    pub count: Option<u64>,
}

/// The header of a trace of `count` events, or of an unfinished streamed trace if
/// `count` is `None`.
pub fn header(count: Option<u64>) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[COUNT_OFFSET..COUNT_OFFSET + 8].copy_from_slice(&count.unwrap_or(UNFINISHED).to_le_bytes());
    h
}

/// `events` as a complete trace: the header with their count, then their records.
pub fn encode(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + RECORD_LEN * events.len());
    out.extend_from_slice(&header(Some(events.len() as u64)));
    encode_into(&mut out, events);
    out
}

/// Appends the records of `events` (no header) to `out`: for writing a trace chunk by
/// chunk after a [`header`].
pub fn encode_into(out: &mut Vec<u8>, events: &[Event]) {
    // Grow once and write fixed-size records into the new space: no capacity check per
    // event (in the runtime, about an eighth less time than appending record by record).
    let start = out.len();
    out.resize(start + RECORD_LEN * events.len(), 0);
    for (record, e) in out[start..].chunks_exact_mut(RECORD_LEN).zip(events) {
        record.copy_from_slice(&encode_event(e));
    }
}

/// The record of one event.
pub fn encode_event(e: &Event) -> [u8; RECORD_LEN] {
    let (tag, a, b, atomic) = match e.op {
        Op::Request { lock } => (TAG_REQUEST, lock, 0, false),
        Op::Acquire { lock } => (TAG_ACQUIRE, lock, 0, false),
        Op::Release { lock } => (TAG_RELEASE, lock, 0, false),
        Op::Read {
            addr,
            width,
            atomic,
        } => (TAG_READ, addr, width, atomic),
        Op::Write {
            addr,
            width,
            atomic,
        } => (TAG_WRITE, addr, width, atomic),
        Op::Rmw { addr, width } => (TAG_RMW, addr, width, false),
        Op::Alloc { addr, size } => (TAG_ALLOC, addr, size, false),
        Op::Free { addr, size } => (TAG_FREE, addr, size, false),
        Op::Fork { child } => (TAG_FORK, child, 0, false),
        Op::Join { child } => (TAG_JOIN, child, 0, false),
        Op::End => (TAG_END, 0, 0, false),
        Op::NotALock { lock } => (TAG_NOT_A_LOCK, lock, 0, false),
    };
    let mut flags = 0;
    if atomic {
        flags |= FLAG_ATOMIC;
    }
    if e.location.is_some() {
        flags |= FLAG_LOCATION;
    }
    let mut r = [0u8; RECORD_LEN];
    r[0..4].copy_from_slice(&e.thread.to_le_bytes());
    r[4] = tag;
    r[5] = flags;
    r[8..12].copy_from_slice(&a.to_le_bytes());
    r[12..16].copy_from_slice(&b.to_le_bytes());
    r[16..20].copy_from_slice(&e.location.unwrap_or(NO_LOCATION).to_le_bytes());
    r
}

/// Writes `count` into the header at the start of `bytes` (which must hold at least the
/// header): finishes a trace written with [`header`]`(None)` and [`encode_into`].
pub fn set_count(bytes: &mut [u8], count: u64) -> Result<(), NativeError> {
    read_header(bytes)?;
    bytes[COUNT_OFFSET..COUNT_OFFSET + 8].copy_from_slice(&count.to_le_bytes());
    Ok(())
}

/// Reads and checks the header at the start of `bytes`.
pub fn read_header(bytes: &[u8]) -> Result<Header, NativeError> {
    // A short input that is a prefix of the magic is a truncated trace; anything else
    // is not a trace at all.
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(NativeError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(NativeError::TruncatedHeader { len: bytes.len() });
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(NativeError::UnsupportedVersion { version });
    }
    let reserved = u32_at(bytes, 12);
    if reserved != 0 {
        return Err(NativeError::ReservedHeader { value: reserved });
    }
    let count = u64::from_le_bytes(
        bytes[COUNT_OFFSET..COUNT_OFFSET + 8]
            .try_into()
            .expect("8 bytes"),
    );
    Ok(Header {
        version,
        count: (count != UNFINISHED).then_some(count),
    })
}

/// Decodes a trace written by [`encode`] (or streamed, see the
/// [module documentation](self)). [`Decoder`] decodes the same piece by piece.
pub fn decode(bytes: &[u8]) -> Result<Vec<Event>, NativeError> {
    let header = read_header(bytes)?;
    let body = &bytes[HEADER_LEN..];
    let records = body.chunks_exact(RECORD_LEN);
    let whole = records.len() as u64;
    let rest = records.remainder().len();
    check_count(header, whole, rest)?;
    records
        .enumerate()
        .map(|(i, r)| decode_event(i as u64, r.try_into().expect("a whole record")))
        .collect()
}

/// Checks that `whole` complete records and `rest` more bytes are what `header` announces:
/// a finished trace holds exactly its count of events, an unfinished one whole records
/// only.
fn check_count(header: Header, whole: u64, rest: usize) -> Result<(), NativeError> {
    match header.count {
        Some(count) if whole < count => Err(NativeError::Truncated {
            event: whole,
            bytes: rest,
        }),
        Some(count) if whole > count => Err(NativeError::CountMismatch {
            header: count,
            records: whole,
        }),
        Some(count) if rest != 0 => Err(NativeError::TrailingBytes {
            events: count,
            bytes: rest,
        }),
        None if rest != 0 => Err(NativeError::Truncated {
            event: whole,
            bytes: rest,
        }),
        _ => Ok(()),
    }
}

/// A decoder for a trace that comes in pieces of any size (a file read in blocks), so
/// that a saved trace of any length can be analyzed again in bounded memory: feed it the
/// bytes in order with [`Decoder::feed`], which appends the events of every complete
/// record, and end with [`Decoder::finish`], which makes the checks of [`decode`] that
/// need the whole input. It makes the checks of [`decode`] in the order the bytes come: a
/// bad record is named before a wrong count, which only the end shows.
#[derive(Debug, Default)]
pub struct Decoder {
    header: Option<Header>,
    /// Bytes of an incomplete header or record.
    partial: Vec<u8>,
    /// Records decoded so far.
    records: u64,
}

impl Decoder {
    /// A decoder that has seen no byte.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Records decoded so far.
    pub fn events(&self) -> u64 {
        self.records
    }

    /// Decodes the next `bytes` of the trace and appends the events of its complete
    /// records to `out`. Fails on the first problem (see [`decode`]).
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) -> Result<(), NativeError> {
        if self.header.is_none() {
            let need = HEADER_LEN - self.partial.len();
            let take = need.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < HEADER_LEN {
                // Fails early on bytes that cannot start a trace.
                return match read_header(&self.partial) {
                    Err(NativeError::TruncatedHeader { .. }) | Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            self.header = Some(read_header(&self.partial)?);
            self.partial.clear();
        }
        if !self.partial.is_empty() {
            let take = (RECORD_LEN - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < RECORD_LEN {
                return Ok(());
            }
            let record: [u8; RECORD_LEN] = self.partial[..].try_into().expect("a whole record");
            self.partial.clear();
            self.record(&record, out)?;
        }
        let records = bytes.chunks_exact(RECORD_LEN);
        self.partial.extend_from_slice(records.remainder());
        out.reserve(records.len());
        for r in records {
            self.record(r.try_into().expect("a whole record"), out)?;
        }
        Ok(())
    }

    fn record(&mut self, r: &[u8; RECORD_LEN], out: &mut Vec<Event>) -> Result<(), NativeError> {
        out.push(decode_event(self.records, r)?);
        self.records += 1;
        Ok(())
    }

    /// Ends the input: checks that it held the header's count of events and no stray
    /// bytes, and returns the number of events.
    pub fn finish(self) -> Result<u64, NativeError> {
        let Some(header) = self.header else {
            read_header(&self.partial)?;
            unreachable!("a header shorter than HEADER_LEN is refused by read_header");
        };
        check_count(header, self.records, self.partial.len())?;
        Ok(self.records)
    }
}

/// Decodes the record of event number `event`.
pub fn decode_event(event: u64, r: &[u8; RECORD_LEN]) -> Result<Event, NativeError> {
    let invalid = |what| NativeError::InvalidRecord { event, what };
    let thread = u32_at(r, 0);
    let (tag, flags) = (r[4], r[5]);
    let a = u32_at(r, 8);
    let b = u32_at(r, 12);
    let location = u32_at(r, 16);
    if tag > TAG_NOT_A_LOCK {
        return Err(NativeError::UnknownOp { event, tag });
    }
    if r[6..8] != [0, 0] {
        return Err(invalid("the reserved bytes 6..8 are not 0"));
    }
    if flags & !(FLAG_ATOMIC | FLAG_LOCATION) != 0 {
        return Err(invalid("unknown flag bits are set"));
    }
    let atomic = flags & FLAG_ATOMIC != 0;
    if atomic && !matches!(tag, TAG_READ | TAG_WRITE) {
        return Err(invalid(
            "the atomic flag is set on an op that is not a read or write",
        ));
    }
    let no_b = |op: Op| {
        if b == 0 {
            Ok(op)
        } else {
            Err(invalid(
                "the width/size field of an op without one is not 0",
            ))
        }
    };
    let op = match tag {
        TAG_REQUEST => no_b(Op::Request { lock: a })?,
        TAG_ACQUIRE => no_b(Op::Acquire { lock: a })?,
        TAG_RELEASE => no_b(Op::Release { lock: a })?,
        TAG_READ => Op::Read {
            addr: a,
            width: b,
            atomic,
        },
        TAG_WRITE => Op::Write {
            addr: a,
            width: b,
            atomic,
        },
        TAG_RMW => Op::Rmw { addr: a, width: b },
        TAG_ALLOC => Op::Alloc { addr: a, size: b },
        TAG_FREE => Op::Free { addr: a, size: b },
        TAG_FORK => no_b(Op::Fork { child: a })?,
        TAG_JOIN => no_b(Op::Join { child: a })?,
        TAG_END if a == 0 && b == 0 => Op::End,
        TAG_END => return Err(invalid("the fields of an end are not 0")),
        TAG_NOT_A_LOCK => no_b(Op::NotALock { lock: a })?,
        _ => return Err(NativeError::UnknownOp { event, tag }),
    };
    let location = if flags & FLAG_LOCATION != 0 {
        Some(location)
    } else if location == NO_LOCATION {
        None
    } else {
        return Err(invalid(
            "the location field is set but the has-location flag is clear",
        ));
    };
    Ok(Event {
        thread,
        op,
        location,
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}
