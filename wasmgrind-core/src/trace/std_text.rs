//! STD, RAPID's text trace format: one `T<n>|op(X<m>)|location` line per event (see the
//! [module documentation](super)).

use super::export::{DenseEvent, DenseOp, DenseTrace, FormatError, IdKind};
use super::rapid_bin::{MAX_LOCKS, MAX_THREADS, MAX_VARIABLES};

/// The longest line, newline included: `T` and 10 digits, `|`, `fork(T` and 10 digits,
/// `)|` and 10 digits, `\n` (40 bytes), plus one byte of slack.
const MAX_LINE: usize = 41;

/// The text from the `|` after the thread to the decor's digits, for example `|r(V`,
/// padded to 8 bytes so that it is copied as one word, and its length.
#[inline]
fn op_text(op: &DenseOp) -> ([u8; 8], usize) {
    match op {
        DenseOp::Acquire { .. } => (*b"|acq(L\0\0", 6),
        DenseOp::Release { .. } => (*b"|rel(L\0\0", 6),
        DenseOp::Request { .. } => (*b"|req(L\0\0", 6),
        DenseOp::Read { .. } => (*b"|r(V\0\0\0\0", 4),
        DenseOp::Write { .. } => (*b"|w(V\0\0\0\0", 4),
        DenseOp::Fork { .. } => (*b"|fork(T\0", 7),
        DenseOp::Join { .. } => (*b"|join(T\0", 7),
    }
}

/// The two-digit pairs `00` to `99`, for writing numbers two digits at a time.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes the decimal digits of `n` at `line[at..]` and returns the position after them.
/// `line` must have room for 10 digits from `at`.
#[inline]
fn put_number(line: &mut [u8; MAX_LINE], at: usize, mut n: u32) -> usize {
    let len = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1_000..=9_999 => 4,
        10_000..=99_999 => 5,
        100_000..=999_999 => 6,
        1_000_000..=9_999_999 => 7,
        10_000_000..=99_999_999 => 8,
        100_000_000..=999_999_999 => 9,
        _ => 10,
    };
    let end = at + len;
    let mut i = end;
    while n >= 10 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        line[i] = PAIRS[pair];
        line[i + 1] = PAIRS[pair + 1];
    }
    if i > at {
        line[at] = b'0' + n as u8;
    }
    end
}

/// Writes the line of `e`, newline included, at the start of `line` and returns its
/// length.
#[inline]
fn put_line(line: &mut [u8; MAX_LINE], e: &DenseEvent) -> usize {
    line[0] = b'T';
    let at = put_number(line, 1, e.thread);
    let (text, len) = op_text(&e.op);
    // `at` is at most 11, so the 8 bytes fit.
    line[at..at + 8].copy_from_slice(&text);
    let at = put_number(line, at + len, e.op.decor());
    line[at] = b')';
    line[at + 1] = b'|';
    let at = put_number(line, at + 2, e.location);
    line[at] = b'\n';
    at + 1
}

/// Formats one event as a line without the newline, for example `T0|r(V12)|34`.
pub fn encode_event(e: &DenseEvent) -> String {
    let mut line = Vec::new();
    encode_bytes_into(std::slice::from_ref(e), &mut line);
    line.pop();
    String::from_utf8(line).expect("STD text is ASCII")
}

/// Writes `trace` as STD text, one line per event, each ending with `\n`. STD has no
/// header and no field widths, so this cannot fail; the counts of `trace` are not written.
pub fn encode(trace: &DenseTrace) -> String {
    let mut out = Vec::new();
    encode_bytes_into(&trace.events, &mut out);
    String::from_utf8(out).expect("STD text is ASCII")
}

/// Appends the lines of `events`, each ending with `\n`, to `out`: for writing a trace
/// chunk by chunk ([`Exporter`](super::Exporter)). [`encode_bytes_into`] writes the same
/// bytes without checking that they are UTF-8 (and so a little faster).
pub fn encode_into(events: &[DenseEvent], out: &mut String) {
    let mut bytes = Vec::new();
    encode_bytes_into(events, &mut bytes);
    out.push_str(std::str::from_utf8(&bytes).expect("STD text is ASCII"));
}

/// Events whose lines are written into one stretch of new space at a time.
const BLOCK: usize = 512;

/// Appends the lines of `events`, each ending with `\n`, to `out` as bytes (STD text is
/// ASCII): the fast path of [`encode_into`].
pub fn encode_bytes_into(events: &[DenseEvent], out: &mut Vec<u8>) {
    // Lines are written straight into the vector's new space, a block of events at a
    // time (room for the longest lines, cut back to what was written), with no
    // formatting machinery and no capacity check per character.
    out.reserve(events.len() * 20);
    for block in events.chunks(BLOCK) {
        let start = out.len();
        out.resize(start + block.len() * MAX_LINE, 0);
        let mut at = start;
        for e in block {
            let line: &mut [u8; MAX_LINE] = (&mut out[at..at + MAX_LINE])
                .try_into()
                .expect("the block has room for every line");
            at += put_line(line, e);
        }
        out.truncate(at);
    }
}

const EXPECTED: &str = "`T<thread>|<op>(<id>)|<location>` with op acq(L<n>), rel(L<n>), \
                        req(L<n>), r(V<n>), w(V<n>), fork(T<n>) or join(T<n>)";

fn number(s: &str) -> Option<u32> {
    // u32::from_str accepts a leading '+'; STD ids are plain digits.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_line(line: &str) -> Option<DenseEvent> {
    let mut fields = line.split('|');
    let thread = number(fields.next()?.strip_prefix('T')?)?;
    let op = fields.next()?;
    let location = number(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    let (name, rest) = op.split_once('(')?;
    let arg = rest.strip_suffix(')')?;
    let (prefix, id) = arg.split_at_checked(1)?;
    let id = number(id)?;
    let op = match (name, prefix) {
        ("acq", "L") => DenseOp::Acquire { lock: id },
        ("rel", "L") => DenseOp::Release { lock: id },
        ("req", "L") => DenseOp::Request { lock: id },
        ("r", "V") => DenseOp::Read { var: id },
        ("w", "V") => DenseOp::Write { var: id },
        ("fork", "T") => DenseOp::Fork { child: id },
        ("join", "T") => DenseOp::Join { child: id },
        _ => return None,
    };
    Some(DenseEvent {
        thread,
        op,
        location,
    })
}

/// Reads STD text. Empty lines are skipped and `\r\n` line ends accepted. Each count of
/// the result is the largest id of its kind plus one, which is what [`encode`] of an
/// exported trace round-trips to. Fails with [`FormatError::StdSyntax`] on the first line
/// that does not parse, and with a `TooMany*` error if a count would exceed what RapidBin
/// holds.
pub fn decode(text: &str) -> Result<DenseTrace, FormatError> {
    let mut events = Vec::new();
    let (mut threads, mut locks, mut variables) = (0u64, 0u64, 0u64);
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let e = parse_line(line).ok_or_else(|| FormatError::StdSyntax {
            line: n as u64 + 1,
            text: line.to_string(),
            expected: EXPECTED,
        })?;
        threads = threads.max(u64::from(e.thread) + 1);
        let decor = u64::from(e.op.decor()) + 1;
        match e.op.decor_kind() {
            IdKind::Thread => threads = threads.max(decor),
            IdKind::Lock => locks = locks.max(decor),
            IdKind::Variable => variables = variables.max(decor),
            IdKind::Location => {}
        }
        events.push(e);
    }
    if threads > u64::from(MAX_THREADS) {
        return Err(FormatError::TooManyThreads { count: threads });
    }
    if locks > u64::from(MAX_LOCKS) {
        return Err(FormatError::TooManyLocks { count: locks });
    }
    if variables > u64::from(MAX_VARIABLES) {
        return Err(FormatError::TooManyVariables { count: variables });
    }
    Ok(DenseTrace {
        threads: threads as u32,
        locks: locks as u32,
        variables: variables as u32,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every op, with numbers of every digit count up to `u32::MAX`, is written exactly as
    /// the plain `format!` of the STD syntax writes it.
    #[test]
    fn lines_match_the_plain_formatting_for_numbers_of_every_length() {
        let mut numbers = vec![0u32, u32::MAX];
        let mut p = 1u32;
        for _ in 0..9 {
            p *= 10;
            numbers.extend([p - 1, p, p + 1, p + p / 3]);
        }
        let ops = |n: u32| {
            [
                (DenseOp::Acquire { lock: n }, "acq", 'L'),
                (DenseOp::Release { lock: n }, "rel", 'L'),
                (DenseOp::Request { lock: n }, "req", 'L'),
                (DenseOp::Read { var: n }, "r", 'V'),
                (DenseOp::Write { var: n }, "w", 'V'),
                (DenseOp::Fork { child: n }, "fork", 'T'),
                (DenseOp::Join { child: n }, "join", 'T'),
            ]
        };
        let mut events = Vec::new();
        let mut expected = String::new();
        for (i, &a) in numbers.iter().enumerate() {
            for (j, &b) in numbers.iter().enumerate() {
                let c = numbers[(i + j) % numbers.len()];
                for (op, name, prefix) in ops(b) {
                    let e = DenseEvent {
                        thread: a,
                        op,
                        location: c,
                    };
                    let line = format!("T{a}|{name}({prefix}{b})|{c}");
                    assert_eq!(encode_event(&e), line);
                    expected.push_str(&line);
                    expected.push('\n');
                    events.push(e);
                }
            }
        }
        // More events than one block, so that blocks are joined too.
        assert!(events.len() > 2 * BLOCK);
        let mut text = String::from("kept ");
        encode_into(&events, &mut text);
        assert_eq!(text, format!("kept {expected}"));
    }
}
