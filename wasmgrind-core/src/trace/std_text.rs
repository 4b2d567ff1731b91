//! STD, RAPID's text trace format: one `T<n>|op(X<m>)|location` line per event (see the
//! [module documentation](super)).

use super::export::{DenseEvent, DenseOp, DenseTrace, FormatError, IdKind};
use super::rapid_bin::{MAX_LOCKS, MAX_THREADS, MAX_VARIABLES};

/// The mnemonic and the id prefix of the decor of an operation.
fn syntax(op: &DenseOp) -> (&'static str, char) {
    match op {
        DenseOp::Acquire { .. } => ("acq", 'L'),
        DenseOp::Release { .. } => ("rel", 'L'),
        DenseOp::Request { .. } => ("req", 'L'),
        DenseOp::Read { .. } => ("r", 'V'),
        DenseOp::Write { .. } => ("w", 'V'),
        DenseOp::Fork { .. } => ("fork", 'T'),
        DenseOp::Join { .. } => ("join", 'T'),
    }
}

/// Appends the decimal digits of `n`.
#[inline]
fn push_number(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn write_event(out: &mut String, e: &DenseEvent) {
    let (name, prefix) = syntax(&e.op);
    out.push('T');
    push_number(out, e.thread);
    out.push('|');
    out.push_str(name);
    out.push('(');
    out.push(prefix);
    push_number(out, e.op.decor());
    out.push_str(")|");
    push_number(out, e.location);
}

/// Formats one event as a line without the newline, for example `T0|r(V12)|34`.
pub fn encode_event(e: &DenseEvent) -> String {
    let mut line = String::new();
    write_event(&mut line, e);
    line
}

/// Writes `trace` as STD text, one line per event, each ending with `\n`. STD has no
/// header and no field widths, so this cannot fail; the counts of `trace` are not written.
pub fn encode(trace: &DenseTrace) -> String {
    let mut out = String::new();
    encode_into(&trace.events, &mut out);
    out
}

/// Appends the lines of `events`, each ending with `\n`, to `out`: for writing a trace
/// chunk by chunk ([`Exporter`](super::Exporter)).
pub fn encode_into(events: &[DenseEvent], out: &mut String) {
    out.reserve(events.len() * 16);
    for e in events {
        write_event(out, e);
        out.push('\n');
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
