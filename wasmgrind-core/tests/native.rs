//! Round trips and errors of Wasmgrind's native trace format.

use wasmgrind_core::trace::native::{
    decode, encode, encode_event, encode_into, header, read_header, set_count, Header, NativeError,
    COUNT_OFFSET, HEADER_LEN, MAGIC, RECORD_LEN, UNFINISHED, VERSION,
};
use wasmgrind_core::trace::{native, Event, Op};

/// One event of every op kind, with and without atomics and locations, and extreme values.
fn every_op() -> Vec<Event> {
    vec![
        Event::new(0, Op::Fork { child: 7 }, Some(0)),
        Event::new(7, Op::Request { lock: 0x1000 }, Some(1)),
        Event::new(7, Op::Acquire { lock: 0x1000 }, Some(2)),
        Event::new(
            7,
            Op::Read {
                addr: 0x2000,
                width: 4,
                atomic: false,
            },
            Some(3),
        ),
        Event::new(
            7,
            Op::Read {
                addr: 0x2008,
                width: 8,
                atomic: true,
            },
            None,
        ),
        Event::new(
            7,
            Op::Write {
                addr: 0x2000,
                width: 1,
                atomic: false,
            },
            Some(u32::MAX),
        ),
        Event::new(
            7,
            Op::Write {
                addr: u32::MAX,
                width: 2,
                atomic: true,
            },
            Some(4),
        ),
        Event::new(
            7,
            Op::Rmw {
                addr: 0x3000,
                width: 4,
            },
            Some(5),
        ),
        Event::new(
            7,
            Op::Alloc {
                addr: 0x4000,
                size: 64,
            },
            None,
        ),
        Event::new(
            7,
            Op::Free {
                addr: 0x4000,
                size: 64,
            },
            Some(6),
        ),
        Event::new(7, Op::Release { lock: 0x1000 }, Some(7)),
        Event::new(7, Op::End, None),
        Event::new(u32::MAX, Op::Join { child: 7 }, Some(8)),
        Event::new(0, Op::NotALock { lock: 0x2000 }, None),
    ]
}

#[test]
fn every_op_round_trips() {
    let events = every_op();
    let bytes = encode(&events);
    assert_eq!(bytes.len(), HEADER_LEN + RECORD_LEN * events.len());
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(
        read_header(&bytes).unwrap(),
        Header {
            version: VERSION,
            count: Some(events.len() as u64),
        }
    );
    assert_eq!(decode(&bytes).unwrap(), events);
}

#[test]
fn an_empty_trace_round_trips() {
    let bytes = encode(&[]);
    assert_eq!(bytes.len(), HEADER_LEN);
    assert_eq!(decode(&bytes).unwrap(), vec![]);
}

#[test]
fn the_layout_is_little_endian_as_documented() {
    let e = Event::new(
        0x0102_0304,
        Op::Write {
            addr: 0x1122_3344,
            width: 4,
            atomic: true,
        },
        Some(9),
    );
    let r = encode_event(&e);
    assert_eq!(
        r,
        [
            4, 3, 2, 1, // thread
            4, // tag: write
            3, // flags: atomic, has a location
            0, 0, // reserved
            0x44, 0x33, 0x22, 0x11, // addr
            4, 0, 0, 0, // width
            9, 0, 0, 0, // location
        ]
    );
    let none = encode_event(&Event::new(1, Op::Fork { child: 2 }, None));
    assert_eq!(none[4], 8);
    assert_eq!(none[5], 0);
    assert_eq!(&none[16..20], &[0xff; 4]);
    assert_eq!(
        &header(Some(2))[..],
        &[
            b'W', b'G', b'T', b'R', b'A', b'C', b'E', 0, // magic
            1, 0, 0, 0, // version
            0, 0, 0, 0, // reserved
            2, 0, 0, 0, 0, 0, 0, 0, // count
        ]
    );
}

#[test]
fn a_streamed_trace_is_written_in_chunks_and_finished() {
    let events = every_op();
    let mut bytes = header(None).to_vec();
    for chunk in events.chunks(5) {
        encode_into(&mut bytes, chunk);
    }
    // Unfinished: readable, with an unknown count.
    assert_eq!(read_header(&bytes).unwrap().count, None);
    assert_eq!(decode(&bytes).unwrap(), events);
    // A writer killed in the middle of a record.
    let cut = &bytes[..bytes.len() - 3];
    assert_eq!(
        decode(cut),
        Err(NativeError::Truncated {
            event: events.len() as u64 - 1,
            bytes: RECORD_LEN - 3,
        })
    );
    // Finished: the same bytes as encoding at once.
    set_count(&mut bytes, events.len() as u64).unwrap();
    assert_eq!(bytes, encode(&events));
    assert_eq!(
        u64::from_le_bytes(bytes[COUNT_OFFSET..COUNT_OFFSET + 8].try_into().unwrap()),
        events.len() as u64
    );
    assert_eq!(
        set_count(&mut [0u8; 4], 1),
        Err(NativeError::BadMagic),
        "set_count checks the header"
    );
}

#[test]
fn bad_magic_is_not_a_trace() {
    let err = decode(b"T0|acq(L0)|0\nT0|rel(L0)|0\n").unwrap_err();
    assert_eq!(err, NativeError::BadMagic);
    assert!(
        err.to_string().starts_with("not a Wasmgrind trace"),
        "{err}"
    );
    assert_eq!(decode(b""), Err(NativeError::TruncatedHeader { len: 0 }));
    assert_eq!(decode(b"WGT"), Err(NativeError::TruncatedHeader { len: 3 }));
    assert_eq!(decode(b"WGX"), Err(NativeError::BadMagic));
}

#[test]
fn a_truncated_header_is_named() {
    let bytes = encode(&every_op());
    let err = decode(&bytes[..20]).unwrap_err();
    assert_eq!(err, NativeError::TruncatedHeader { len: 20 });
    assert!(err.to_string().contains("truncated in its header"), "{err}");
}

#[test]
fn an_unsupported_version_is_named() {
    let mut bytes = encode(&every_op());
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err, NativeError::UnsupportedVersion { version: 2 });
    assert!(
        err.to_string()
            .contains("format version 2, but this build reads only version 1"),
        "{err}"
    );
    let mut bytes = encode(&[]);
    bytes[12] = 1;
    assert_eq!(
        decode(&bytes),
        Err(NativeError::ReservedHeader { value: 1 })
    );
}

#[test]
fn truncation_names_the_event() {
    let events = every_op();
    let bytes = encode(&events);
    // Cut inside event 3.
    let err = decode(&bytes[..HEADER_LEN + 3 * RECORD_LEN + 7]).unwrap_err();
    assert_eq!(err, NativeError::Truncated { event: 3, bytes: 7 });
    assert_eq!(
        err.to_string(),
        "the Wasmgrind trace is truncated at event 3: 7 of its 20 bytes are present"
    );
    // Cut between events: the first missing one.
    assert_eq!(
        decode(&bytes[..HEADER_LEN + 5 * RECORD_LEN]),
        Err(NativeError::Truncated { event: 5, bytes: 0 })
    );
}

#[test]
fn more_events_than_announced_is_a_count_mismatch() {
    let events = every_op();
    let mut bytes = encode(&events);
    set_count(&mut bytes, 4).unwrap();
    let err = decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        NativeError::CountMismatch {
            header: 4,
            records: events.len() as u64,
        }
    );
    assert_eq!(
        err.to_string(),
        "the Wasmgrind trace's header announces 4 events, but the file holds 14"
    );
    let mut bytes = encode(&events);
    bytes.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        decode(&bytes),
        Err(NativeError::TrailingBytes {
            events: events.len() as u64,
            bytes: 3,
        })
    );
}

#[test]
fn an_unknown_op_tag_names_the_event() {
    let mut bytes = encode(&every_op());
    bytes[HEADER_LEN + 2 * RECORD_LEN + 4] = 12;
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err, NativeError::UnknownOp { event: 2, tag: 12 });
    assert_eq!(
        err.to_string(),
        "unknown op tag 12 at event 2 (known tags are 0 to 11)"
    );
}

#[test]
fn invalid_records_are_refused() {
    let events = every_op();
    let at = |event: usize, byte: usize| HEADER_LEN + event * RECORD_LEN + byte;
    let refused = |patch: &dyn Fn(&mut Vec<u8>), event: u64, what: &str| {
        let mut bytes = encode(&events);
        patch(&mut bytes);
        match decode(&bytes) {
            Err(NativeError::InvalidRecord { event: e, what: w }) => {
                assert_eq!(e, event);
                assert!(w.contains(what), "{w}");
            }
            other => panic!("expected an invalid record at {event}, got {other:?}"),
        }
    };
    // Event 1 is a request (lock, no width), event 3 a non-atomic read.
    refused(&|b| b[at(1, 5)] |= 1, 1, "atomic flag");
    refused(&|b| b[at(3, 5)] |= 0x80, 3, "unknown flag bits");
    refused(&|b| b[at(3, 6)] = 1, 3, "reserved bytes");
    refused(&|b| b[at(1, 12)] = 4, 1, "width/size field");
    // Event 4 has no location: its field must be u32::MAX.
    refused(&|b| b[at(4, 16)] = 0, 4, "has-location flag");
    let err = NativeError::InvalidRecord {
        event: 4,
        what: "x",
    };
    assert_eq!(err.to_string(), "invalid event 4: x");
    assert_eq!(UNFINISHED, u64::MAX);
}

/// The decoder fed a trace in pieces of any size decodes what `decode` decodes, and names
/// the same problems at the end.
#[test]
fn the_decoder_fed_in_pieces_decodes_the_same() {
    let events: Vec<Event> = (0..100u32)
        .map(|i| {
            Event::new(
                i % 3,
                Op::Write {
                    addr: i * 4,
                    width: 4,
                    atomic: i % 2 == 0,
                },
                (i % 5 != 0).then_some(i),
            )
        })
        .collect();
    let bytes = native::encode(&events);
    for piece in [1, 3, 19, 20, 21, 24, 25, 1000, bytes.len()] {
        let mut decoder = native::Decoder::new();
        let mut out = Vec::new();
        for part in bytes.chunks(piece) {
            decoder.feed(part, &mut out).unwrap();
        }
        assert_eq!(decoder.finish(), Ok(100), "pieces of {piece}");
        assert_eq!(out, events, "pieces of {piece}");
    }
    // Cut short, one stray byte, and bytes that are no trace.
    for bad in [
        &bytes[..bytes.len() - 7],
        &[bytes.as_slice(), &[0]].concat()[..],
        b"not a trace at all",
    ] {
        let mut decoder = native::Decoder::new();
        let mut out = Vec::new();
        let result = decoder
            .feed(bad, &mut out)
            .and_then(|()| decoder.finish().map(|_| ()));
        assert_eq!(result, native::decode(bad).map(|_| ()));
    }
}
