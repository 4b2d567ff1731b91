//! RapidBin, the binary trace format of the RAPID family of tools (layout in the
//! [module documentation](super)).

use super::export::{DenseEvent, DenseOp, DenseTrace, FormatError};

/// Length of the header in bytes.
pub const HEADER_LEN: usize = 18;
/// Bytes per event.
pub const EVENT_LEN: usize = 8;

/// Width of the thread field.
pub const THREAD_BITS: u32 = 10;
/// Width of the op field.
pub const OP_BITS: u32 = 4;
/// Width of the decor field.
pub const DECOR_BITS: u32 = 34;
/// Width of the location field.
pub const LOCATION_BITS: u32 = 15;

const OP_SHIFT: u32 = THREAD_BITS;
const DECOR_SHIFT: u32 = OP_SHIFT + OP_BITS;
const LOCATION_SHIFT: u32 = DECOR_SHIFT + DECOR_BITS;

/// Most threads a RapidBin trace holds (ids `0..1024`).
pub const MAX_THREADS: u32 = 1 << THREAD_BITS;
/// Most distinct locations a RapidBin trace holds (ids `0..32768`).
pub const MAX_LOCATIONS: u32 = 1 << LOCATION_BITS;
/// Most locks a RapidBin trace holds: the `i32` header field, which binds before the
/// 34-bit decor field.
pub const MAX_LOCKS: u32 = i32::MAX as u32;
/// Most variables a RapidBin trace holds: the `i32` header field, which binds before the
/// 34-bit decor field.
pub const MAX_VARIABLES: u32 = i32::MAX as u32;

/// Op code of an acquire.
pub const OP_ACQUIRE: u8 = 0;
/// Op code of a release.
pub const OP_RELEASE: u8 = 1;
/// Op code of a read.
pub const OP_READ: u8 = 2;
/// Op code of a write.
pub const OP_WRITE: u8 = 3;
/// Op code of a fork.
pub const OP_FORK: u8 = 4;
/// Op code of a join.
pub const OP_JOIN: u8 = 5;
/// Op code of a request.
pub const OP_REQUEST: u8 = 8;

const fn mask(bits: u32) -> u64 {
    (1 << bits) - 1
}

/// Packs one event into its `i64` (as `u64`; the sign bit is 0). The event must have
/// passed [`DenseTrace::validate`], which guarantees that every field fits.
pub fn encode_event(e: &DenseEvent) -> u64 {
    u64::from(e.thread)
        | u64::from(e.op.code()) << OP_SHIFT
        | u64::from(e.op.decor()) << DECOR_SHIFT
        | u64::from(e.location) << LOCATION_SHIFT
}

/// Unpacks one event word and checks it against the counts of `header` (its events are
/// ignored): sign bit clear, known op code, every id below its count. `index` is the
/// event's position, for errors.
pub fn decode_event(index: u64, word: u64, header: &DenseTrace) -> Result<DenseEvent, FormatError> {
    if word >> 63 != 0 {
        return Err(FormatError::SignBitSet { event: index });
    }
    let thread = (word & mask(THREAD_BITS)) as u32;
    let code = ((word >> OP_SHIFT) & mask(OP_BITS)) as u8;
    let decor = (word >> DECOR_SHIFT) & mask(DECOR_BITS);
    let location = ((word >> LOCATION_SHIFT) & mask(LOCATION_BITS)) as u32;
    let op =
        DenseOp::from_code(code, 0).ok_or(FormatError::UnknownOpCode { event: index, code })?;
    let kind = op.decor_kind();
    let count = u64::from(header.count(kind));
    // Every count is at most i32::MAX, so a decor that passes fits in u32.
    if decor >= count {
        return Err(FormatError::IdOutOfRange {
            event: index,
            kind,
            id: decor,
            count,
        });
    }
    let op = DenseOp::from_code(code, decor as u32)
        .ok_or(FormatError::UnknownOpCode { event: index, code })?;
    let e = DenseEvent {
        thread,
        op,
        location,
    };
    header.validate_event(index, &e)?;
    Ok(e)
}

/// Writes `trace` in RapidBin. Fails if it does not fit the format
/// ([`DenseTrace::validate`]).
pub fn encode(trace: &DenseTrace) -> Result<Vec<u8>, FormatError> {
    trace.validate()?;
    let mut out = Vec::with_capacity(HEADER_LEN + EVENT_LEN * trace.events.len());
    out.extend_from_slice(&header(
        trace.threads.into(),
        trace.locks.into(),
        trace.variables.into(),
        trace.events.len() as u64,
    )?);
    encode_events_into(&trace.events, &mut out);
    Ok(out)
}

/// The 18-byte header of a trace with these counts. Fails with the `TooMany*` error of a
/// count that does not fit its field.
pub fn header(
    threads: u64,
    locks: u64,
    variables: u64,
    events: u64,
) -> Result<[u8; HEADER_LEN], FormatError> {
    if threads > u64::from(MAX_THREADS) {
        return Err(FormatError::TooManyThreads { count: threads });
    }
    if locks > u64::from(MAX_LOCKS) {
        return Err(FormatError::TooManyLocks { count: locks });
    }
    if variables > u64::from(MAX_VARIABLES) {
        return Err(FormatError::TooManyVariables { count: variables });
    }
    let events = i64::try_from(events).map_err(|_| FormatError::TooManyEvents { count: events })?;
    let mut h = [0u8; HEADER_LEN];
    // Checked above: each count fits its field.
    h[0..2].copy_from_slice(&(threads as i16).to_be_bytes());
    h[2..6].copy_from_slice(&(locks as i32).to_be_bytes());
    h[6..10].copy_from_slice(&(variables as i32).to_be_bytes());
    h[10..18].copy_from_slice(&events.to_be_bytes());
    Ok(h)
}

/// Appends the words of `events` (no header) to `out`: for writing a trace chunk by
/// chunk ([`Exporter`](super::Exporter)). The events must fit the format, as the
/// exporter's or those of a trace that passed [`DenseTrace::validate`] do.
pub fn encode_events_into(events: &[DenseEvent], out: &mut Vec<u8>) {
    // Grow once and write fixed-size words into the new space: no capacity check per event.
    let start = out.len();
    out.resize(start + EVENT_LEN * events.len(), 0);
    for (word, e) in out[start..].chunks_exact_mut(EVENT_LEN).zip(events) {
        // The word of `encode_event` as its two big-endian halves: WebAssembly has no
        // 64-bit byte swap, and two 32-bit ones are about 4 times faster in V8.
        let decor = e.op.decor();
        let high = e.location << (LOCATION_SHIFT - 32) | decor >> (32 - DECOR_SHIFT);
        let low = decor << DECOR_SHIFT | u32::from(e.op.code()) << OP_SHIFT | e.thread;
        word[..4].copy_from_slice(&high.to_be_bytes());
        word[4..].copy_from_slice(&low.to_be_bytes());
    }
}

/// Reads RapidBin. Checks the header (no negative counts, at most 1,024 threads), that the
/// data holds exactly the announced number of events, that every op code is one Wasmgrind
/// writes, that every sign bit is clear and that every id is below its count.
pub fn decode(bytes: &[u8]) -> Result<DenseTrace, FormatError> {
    let actual = bytes.len() as u64;
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(FormatError::Truncated {
            needed: HEADER_LEN as u64,
            actual,
        });
    };
    let threads = i16::from_be_bytes([header[0], header[1]]);
    let locks = i32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    let variables = i32::from_be_bytes([header[6], header[7], header[8], header[9]]);
    let mut n = [0u8; 8];
    n.copy_from_slice(&header[10..18]);
    let events = i64::from_be_bytes(n);

    let count = |field: &'static str, value: i64| {
        u64::try_from(value).map_err(|_| FormatError::NegativeCount { field, value })
    };
    let threads = count("thread", threads.into())?;
    let locks = count("lock", locks.into())?;
    let variables = count("variable", variables.into())?;
    let events = count("event", events)?;
    if threads > u64::from(MAX_THREADS) {
        return Err(FormatError::TooManyThreads { count: threads });
    }

    let body = actual - HEADER_LEN as u64;
    let needed = events.checked_mul(EVENT_LEN as u64);
    match needed {
        Some(needed) if needed == body => {}
        Some(needed) if needed < body => {
            return Err(FormatError::TrailingBytes {
                expected: needed + HEADER_LEN as u64,
                actual,
            })
        }
        _ => {
            return Err(FormatError::Truncated {
                needed: needed
                    .and_then(|n| n.checked_add(HEADER_LEN as u64))
                    .unwrap_or(u64::MAX),
                actual,
            })
        }
    }

    let mut trace = DenseTrace {
        threads: threads as u32,
        locks: locks as u32,
        variables: variables as u32,
        events: Vec::with_capacity(events as usize),
    };
    for (i, chunk) in bytes[HEADER_LEN..].chunks_exact(EVENT_LEN).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let e = decode_event(i as u64, u64::from_be_bytes(w), &trace)?;
        trace.events.push(e);
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words that [`encode_events_into`] writes are [`encode_event`]'s, big-endian, for
    /// every op and for the smallest and largest values of every field.
    #[test]
    fn written_words_are_the_encoded_events_big_endian() {
        let mut events = Vec::new();
        for thread in [0, 1, 0x155, MAX_THREADS - 1] {
            for decor in [0, 1, 0x3_FFFF, 0x4_0000, 0x2AAA_AAAA, MAX_VARIABLES] {
                for location in [0, 1, 0x5555, MAX_LOCATIONS - 1] {
                    for code in [0, 1, 2, 3, 4, 5, 8] {
                        events.push(DenseEvent {
                            thread,
                            op: DenseOp::from_code(code, decor).unwrap(),
                            location,
                        });
                    }
                }
            }
        }
        let mut out = vec![7];
        encode_events_into(&events, &mut out);
        let mut expected = vec![7];
        for e in &events {
            expected.extend_from_slice(&encode_event(e).to_be_bytes());
        }
        assert_eq!(out, expected);
    }
}
