//! The consumer side of a run's trace: what the manager does with every chunk it drains
//! from the recorder.
//!
//! # Streaming design
//!
//! Recording threads append to their own buffers ([`Recorder`](wasmgrind_core::trace::Recorder));
//! nothing caps the total. While the program runs, the manager (`wasmgrind.js`, in
//! `wgrind_worker.js`) calls `traceDrain` every few milliseconds, which moves the oldest
//! recorded events out of the recorder, at most `chunkEvents` of them and always a prefix
//! of the trace ([`Recorder::drain`](wasmgrind_core::trace::Recorder::drain)), and hands
//! them to a [`Stream`]. The stream feeds them to
//!
//! - the detectors ([`Analyzer`]: race detector and deadlock predictor, both streaming)
//!   and the consistency checks ([`LockChecker`], [`ForkJoinChecker`]);
//! - the incremental exporter ([`Exporter`]), which keeps the dense-id maps so that ids
//!   stay consistent from chunk to chunk, and writes the chunk's RapidBin words, STD lines
//!   and native records;
//!
//! and frees them. The encoded [`Chunk`] goes to the caller (`onChunk`, or the CLI, which
//! appends it to its files), or is collected by the manager for callers that want the
//! whole trace at once. The first chunk starts with placeholder headers (18 zero bytes
//! for RapidBin, the "unfinished" header for the native format), so that the chunks'
//! bytes, concatenated, are the files; at the end, [`Stream::finish`] gives the real
//! headers, whose counts RapidBin needs in front, to be written over the placeholders.
//!
//! # The analysis on a worker of its own
//!
//! The detectors and the checks ([`Analysis`]) may run beside the manager: when a full
//! memory trace comes fast (a drained chunk is full), the runtime starts one more worker
//! for them (worker.js in its `analyze` role), which calls [`Offload::run`] in its own
//! utility instance. From then on the
//! stream hands every chunk's events to it ([`Offload::submit`]) once it has encoded them,
//! and the manager goes on draining and encoding the next chunk while the worker analyzes
//! this one; on a run that the manager's work paces (full tracing, where the recording
//! threads wait for the drains), the two kinds of work then take the time of the longer
//! one, not of both. The chunks are analyzed in their order, one after the other, as on
//! the manager: the findings are the same. At most [`Offload::MAX_IN_FLIGHT`] events wait
//! for the worker (the manager drains no more meanwhile, so the recording threads wait as
//! they do when the manager falls behind); the end of the run waits until the worker has
//! analyzed them all ([`Offload::busy`]) before [`Stream::finish`] reads the findings.
//! Until a worker attaches, and without one, the stream analyzes every chunk itself.
//!
//! Memory stays bounded: the recorder holds what the manager has not drained yet, and
//! recording threads wait while that is more than the session's `max_pending` (the
//! manager in turn waits while the caller has not taken its chunks); the stream holds the
//! detectors' state and the id maps, which grow with the program's memory, threads and
//! locks, not with the number of events.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::session::now_ms;

use wasmgrind_core::analysis::{Analyzer, Findings, LiveDeadlock};
use wasmgrind_core::location::{Location, LocationId};
use wasmgrind_core::trace::timeline::TimelineWriter;
use wasmgrind_core::trace::{
    native, rapid_bin, std_text, DenseOp, Event, ExportOptions, Exporter, ForkJoinChecker,
    FormatError, LockChecker, Metadata, Op,
};

/// One piece of the encoded trace: the formats' bytes of a run of consecutive events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its position among the chunks of the run, from 0.
    pub index: u64,
    /// Recorded events in it (before atomics are expanded into pseudo-lock brackets).
    pub events: u64,
    /// RapidBin words; chunk 0 starts with an 18-byte placeholder header of zeros.
    pub rapid_bin: Vec<u8>,
    /// STD lines, each ending with `\n` (ASCII: the bytes go to the caller as they are).
    pub std: Vec<u8>,
    /// Native records; chunk 0 starts with the header of an unfinished trace
    /// ([`native::header`]`(None)`).
    pub native: Vec<u8>,
    /// The timeline's part for these events (Chrome trace-event JSON; chunk 0 starts the
    /// document), empty unless the stream writes a timeline ([`Stream::with_timeline`]).
    pub timeline: String,
}

impl Chunk {
    /// The bytes of all three formats together.
    pub fn bytes(&self) -> u64 {
        (self.rapid_bin.len() + self.std.len() + self.native.len()) as u64
    }
}

/// What is known of a whole trace once it ends: the final headers, the metadata, the
/// counts, the consistency checks' verdicts and the time its chunks took. A [`Summary`]
/// has it, and so has the end of a session (`session::Finished`).
#[derive(Debug, Clone)]
pub struct Totals {
    /// The RapidBin header with the final counts, to be written over chunk 0's placeholder.
    pub rapid_bin_header: [u8; rapid_bin::HEADER_LEN],
    /// The native header with the final count, to be written over chunk 0's placeholder.
    pub native_header: [u8; native::HEADER_LEN],
    /// What every dense id stands for.
    pub metadata: Metadata,
    /// Recorded events in the trace (before atomics are expanded into pseudo-lock
    /// brackets).
    pub events: u64,
    /// Exported `acq` events (real locks and, with `atomicsAsLocks`, pseudo-locks); without
    /// the export ([`Stream::without_export`]), the `Acquire` events.
    pub acquisitions: u64,
    /// Chunks produced, the last one included.
    pub chunks: u64,
    /// Bytes of the three formats together.
    pub bytes: u64,
    /// Why the trace is not lock-consistent, if it is not (a Wasmgrind bug).
    pub lock_consistency: Option<String>,
    /// Why the forks and joins are not consistent, if they are not (a Wasmgrind bug).
    pub fork_join_consistency: Option<String>,
    /// How long the work on the trace took, all chunks together.
    pub timings: Timings,
}

/// What a finished stream knows about the whole trace.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The headers, metadata, counts, verdicts and timings of the trace.
    pub totals: Totals,
    /// What the detectors found (with the live deadlock, if the run ended in one).
    pub findings: Findings,
    /// The timeline's writer, to end the document with the final findings
    /// ([`TimelineWriter::finish`]), when the stream writes a timeline.
    pub timeline: Option<TimelineWriter>,
}

/// Milliseconds that the work on a run's trace took, summed over its chunks (see
/// [`now_ms`]): what `cargo xtask bench runtime` divides by the number of events.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Moving events out of the threads' buffers into chunks ([`Recorder::drain`](wasmgrind_core::trace::Recorder::drain)).
    pub collect_ms: f64,
    /// The detectors, the consistency checks and, at the end, the report (symbolization
    /// included).
    pub analysis_ms: f64,
    /// Wasmgrind's own format ([`native`]).
    pub native_ms: f64,
    /// The dense ids of the exported formats, which RapidBin, STD and the metadata share.
    pub dense_ms: f64,
    /// RapidBin from the dense events.
    pub rapid_bin_ms: f64,
    /// STD from the dense events.
    pub std_ms: f64,
    /// The metadata (JSON), at the end.
    pub metadata_ms: f64,
}

/// The byte limit a stream passed: the trace stops after the chunk that passed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BytesReached {
    /// Recorded events in the trace.
    pub events: u64,
    /// Bytes of the three formats together.
    pub bytes: u64,
    /// The limit.
    pub limit: u64,
}

/// The detectors and the consistency checks of a run's trace, fed chunk by chunk, in
/// order: on the manager, or on the analysis worker ([`Offload`]).
#[derive(Debug)]
pub struct Analysis {
    analyzer: Analyzer,
    locks: LockChecker,
    forks: ForkJoinChecker,
    /// The location of the last request of each (thread, lock), for the live deadlock.
    requests: HashMap<(u32, u32), Option<LocationId>>,
    /// Milliseconds spent in [`consume`](Self::consume).
    ms: f64,
}

impl Default for Analysis {
    fn default() -> Analysis {
        Analysis {
            analyzer: Analyzer::new(),
            locks: LockChecker::new(),
            forks: ForkJoinChecker::new(),
            requests: HashMap::new(),
            ms: 0.0,
        }
    }
}

impl Analysis {
    /// Feeds `events`, the next events of the trace in order.
    pub fn consume(&mut self, events: &[Event]) {
        let t0 = now_ms();
        // Event by event: in WebAssembly the race detector's read-ahead over batches
        // (`Analyzer::events`) measured slower, not faster.
        for e in events {
            self.analyzer.event(e);
            if let Op::Request { lock } = e.op {
                self.requests.insert((e.thread, lock), e.location);
            }
        }
        self.locks.events(events);
        self.forks.events(events);
        self.ms += now_ms() - t0;
    }
}

/// Takes a lock without a blocking wait on WebAssembly: the manager, which takes these
/// locks too, may run where `memory.atomic.wait` traps (a browser's main thread, in
/// `runSession`). The critical sections are a push, a pop or a flag.
fn spin_lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    use std::sync::TryLockError;
    loop {
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
}

/// The chunks that wait for the analysis worker, and whether it is to stop.
#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Vec<Event>>,
    closed: bool,
}

/// The hand-over of chunks from the stream to the analysis worker, and the [`Analysis`]
/// itself, which the worker or, without one, the stream feeds; see the
/// [module documentation](self).
#[derive(Debug)]
pub struct Offload {
    queue: Mutex<Queue>,
    /// Events submitted to the worker and not analyzed yet (queued or being analyzed).
    in_flight: AtomicUsize,
    /// [`full`](Self::full) from this many events in flight on.
    capacity: usize,
    /// Whether a worker runs [`Offload::run`]: only then do chunks go to it.
    attached: AtomicBool,
    /// `None` once [`Stream::finish`] took it.
    analysis: Mutex<Option<Analysis>>,
}

impl Offload {
    /// Events that may wait for the worker at once (two chunks of the runtime's default
    /// size): the manager drains no more meanwhile. Counted in events, not chunks, so that
    /// a run with small chunks (`chunkEvents`) does not wait for the worker after every
    /// other chunk.
    pub const MAX_IN_FLIGHT: usize = 1 << 18;

    fn new() -> Offload {
        Offload::with_capacity(Self::MAX_IN_FLIGHT)
    }

    fn with_capacity(capacity: usize) -> Offload {
        Offload {
            queue: Mutex::new(Queue::default()),
            in_flight: AtomicUsize::new(0),
            capacity,
            attached: AtomicBool::new(false),
            analysis: Mutex::new(Some(Analysis::default())),
        }
    }

    /// The analysis worker's loop: from now on chunks come here, and are analyzed one
    /// after the other until [`close`](Self::close). Between chunks the worker sleeps in
    /// short timed waits (on WebAssembly a `memory.atomic.wait`; a worker may block).
    // ANCHOR: offload-run
    pub fn run(&self) {
        {
            let q = spin_lock(&self.queue);
            if q.closed {
                return;
            }
            self.attached.store(true, SeqCst);
        }
        loop {
            let next = {
                let mut q = spin_lock(&self.queue);
                match q.chunks.pop_front() {
                    Some(events) => Some(events),
                    None if q.closed => return,
                    None => None,
                }
            };
            match next {
                Some(events) => {
                    if let Some(a) = spin_lock(&self.analysis).as_mut() {
                        a.consume(&events);
                    }
                    let n = events.len();
                    drop(events);
                    self.in_flight.fetch_sub(n, SeqCst);
                }
                None => std::thread::sleep(std::time::Duration::from_micros(250)),
            }
        }
    }
    // ANCHOR_END: offload-run

    /// Analyzes `events` (the next of the trace): hands them to the worker if one is
    /// attached, else analyzes them here.
    fn submit(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if self.attached.load(SeqCst) {
            let mut q = spin_lock(&self.queue);
            if !q.closed {
                self.in_flight.fetch_add(events.len(), SeqCst);
                q.chunks.push_back(events);
                return;
            }
        }
        if let Some(a) = spin_lock(&self.analysis).as_mut() {
            a.consume(&events);
        }
    }

    /// Whether the worker has chunks to analyze still.
    pub fn busy(&self) -> bool {
        self.in_flight.load(SeqCst) > 0
    }

    /// Whether the worker has its capacity ([`MAX_IN_FLIGHT`](Self::MAX_IN_FLIGHT)) of
    /// events to analyze.
    pub fn full(&self) -> bool {
        self.in_flight.load(SeqCst) >= self.capacity
    }

    /// Ends the worker's loop once the queued chunks are analyzed, and makes later chunks
    /// be analyzed by the stream again.
    pub fn close(&self) {
        spin_lock(&self.queue).closed = true;
        self.attached.store(false, SeqCst);
    }

    /// The analysis, once no worker has chunks of it any more (see [`busy`](Self::busy)).
    fn take(&self) -> Option<Analysis> {
        spin_lock(&self.analysis).take()
    }
}

/// The detectors, checks and exporter of one run's trace, fed chunk by chunk; see the
/// [module documentation](self).
#[derive(Debug)]
pub struct Stream {
    exporter: Exporter,
    analysis: Arc<Offload>,
    events: u64,
    bytes: u64,
    chunks: u64,
    acquisitions: u64,
    max_bytes: Option<u64>,
    /// Set once the byte limit was passed: later events are not part of the trace.
    full: bool,
    scratch: Vec<wasmgrind_core::trace::DenseEvent>,
    /// How long the work on the chunks took so far.
    pub timings: Timings,
    /// The timeline writer, when the run writes a timeline.
    timeline: Option<TimelineWriter>,
    /// Whether the trace is exported (RapidBin, STD, native, metadata); see
    /// [`Stream::without_export`].
    export: bool,
}

impl Stream {
    /// A stream for events whose locations index `locations`, exported with `options`,
    /// that stops after the chunk that takes its output beyond `max_bytes`.
    pub fn new(locations: Vec<Location>, options: ExportOptions, max_bytes: Option<u64>) -> Stream {
        Stream {
            exporter: Exporter::new(locations, options),
            analysis: Arc::new(Offload::new()),
            events: 0,
            bytes: 0,
            chunks: 0,
            acquisitions: 0,
            max_bytes,
            full: false,
            scratch: Vec::new(),
            timings: Timings::default(),
            timeline: None,
            export: true,
        }
    }

    /// The same stream, without the trace (`exportTrace: false`): its chunks carry no
    /// bytes, the summary's headers and metadata describe an empty trace, and only the
    /// detectors, the checks and the timeline see the events. A run that only wants the
    /// findings saves the export's work, a third or more of the work on every event.
    pub fn without_export(mut self) -> Stream {
        self.export = false;
        self
    }

    /// The same stream, writing a timeline too (see
    /// [`timeline`](wasmgrind_core::trace::timeline)) whose events' locations index
    /// `locations`: each chunk gets its part, and [`Summary::timeline`] ends the
    /// document.
    pub fn with_timeline(mut self, locations: Vec<Location>) -> Stream {
        self.timeline = Some(TimelineWriter::new(locations));
        self
    }

    /// The hand-over to the analysis worker (see [`Offload::run`]).
    pub fn offload(&self) -> Arc<Offload> {
        Arc::clone(&self.analysis)
    }

    /// Recorded events in the trace so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The byte limit, if the trace passed it.
    pub fn bytes_reached(&self) -> Option<BytesReached> {
        match self.max_bytes {
            Some(limit) if self.full => Some(BytesReached {
                events: self.events,
                bytes: self.bytes,
                limit,
            }),
            _ => None,
        }
    }

    /// Consumes `events`, the next events of the trace in order, and returns their chunk;
    /// `None` when there is nothing to write (no events, and chunk 0 was written), or when
    /// the byte limit was passed before (the events are dropped then). Fails with the
    /// exporter's error if the trace passes a limit of RapidBin; the stream is spent then.
    /// The events go on to the analysis (on the analysis worker, if one is attached).
    pub fn consume(&mut self, events: Vec<Event>) -> Result<Option<Chunk>, FormatError> {
        if self.full || (events.is_empty() && self.chunks > 0) {
            return Ok(None);
        }
        let mut chunk = Chunk {
            index: self.chunks,
            events: events.len() as u64,
            rapid_bin: Vec::new(),
            std: Vec::new(),
            native: Vec::new(),
            timeline: String::new(),
        };
        if self.chunks == 0 && self.export {
            chunk
                .rapid_bin
                .extend_from_slice(&[0; rapid_bin::HEADER_LEN]);
            chunk.native.extend_from_slice(&native::header(None));
        }
        let events_slice: &[Event] = &events;
        let t0 = now_ms();
        let (t1, t2, t3);
        if self.export {
            let mut dense = std::mem::take(&mut self.scratch);
            dense.clear();
            let exported = self.exporter.dense_into(events_slice, &mut dense);
            if let Err(e) = exported {
                self.scratch = dense;
                return Err(e);
            }
            t1 = now_ms();
            rapid_bin::encode_events_into(&dense, &mut chunk.rapid_bin);
            t2 = now_ms();
            std_text::encode_bytes_into(&dense, &mut chunk.std);
            t3 = now_ms();
            self.acquisitions += dense
                .iter()
                .filter(|e| matches!(e.op, DenseOp::Acquire { .. }))
                .count() as u64;
            self.scratch = dense;
            native::encode_into(&mut chunk.native, events_slice);
        } else {
            (t1, t2, t3) = (t0, t0, t0);
            self.acquisitions += events
                .iter()
                .filter(|e| matches!(e.op, Op::Acquire { .. }))
                .count() as u64;
        }
        if let Some(t) = self.timeline.as_mut() {
            t.events(events_slice, &mut chunk.timeline);
        }
        let t4 = now_ms();
        self.analysis.submit(events);
        let t = &mut self.timings;
        t.dense_ms += t1 - t0;
        t.rapid_bin_ms += t2 - t1;
        t.std_ms += t3 - t2;
        t.native_ms += t4 - t3;
        self.events += chunk.events;
        self.bytes += chunk.bytes();
        self.chunks += 1;
        if self.max_bytes.is_some_and(|max| self.bytes > max) {
            self.full = true;
        }
        Ok(Some(chunk))
    }

    /// Ends the stream: the final headers, the metadata and what the detectors found.
    /// `live` is the deadlock the run ended in, whose requests get their locations here.
    /// The analysis worker, if one was attached, must have analyzed every chunk
    /// ([`Offload::busy`]); it is closed here.
    pub fn finish(self, live: Option<LiveDeadlock>) -> Result<Summary, FormatError> {
        let rapid_bin_header = self.exporter.rapid_bin_header()?;
        self.analysis.close();
        debug_assert!(!self.analysis.busy(), "the analysis worker has chunks left");
        let analysis = self
            .analysis
            .take()
            .expect("only `finish` takes the analysis, and it takes the stream");
        let mut timings = self.timings;
        let t0 = now_ms();
        let mut findings = analysis.analyzer.finish();
        timings.analysis_ms += analysis.ms + now_ms() - t0;
        findings.deadlock = live.map(|mut d| {
            for t in d.threads.iter_mut().filter(|t| t.joining.is_none()) {
                t.requested_at = analysis
                    .requests
                    .get(&(t.thread, t.waiting_on))
                    .copied()
                    .flatten();
            }
            d
        });
        Ok(Summary {
            totals: Totals {
                rapid_bin_header,
                native_header: native::header(Some(self.events)),
                metadata: self.exporter.into_metadata(),
                events: self.events,
                acquisitions: self.acquisitions,
                chunks: self.chunks,
                bytes: self.bytes,
                lock_consistency: analysis.locks.result().err().map(|e| e.to_string()),
                fork_join_consistency: analysis.forks.result().err().map(|e| e.to_string()),
                timings,
            },
            findings,
            timeline: self.timeline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgrind_core::analysis::analyze;
    use wasmgrind_core::trace::{export, Trace};

    fn events() -> Vec<Event> {
        let mut t = vec![Event::new(0, Op::Fork { child: 1 }, None)];
        for i in 0..500u32 {
            t.push(Event::new(
                i % 2,
                Op::Write {
                    addr: 0x100 + 4 * (i % 7),
                    width: 4,
                    atomic: i % 5 == 0,
                },
                Some(i % 3),
            ));
            t.push(Event::new(1, Op::Request { lock: 0x10 }, Some(1)));
            t.push(Event::new(1, Op::Acquire { lock: 0x10 }, Some(1)));
            t.push(Event::new(1, Op::Release { lock: 0x10 }, Some(2)));
        }
        t.push(Event::new(0, Op::Join { child: 1 }, None));
        t
    }

    fn locations() -> Vec<Location> {
        (0..3)
            .map(|i| Location {
                func_index: i,
                func_name: None,
                code_offset: i * 10,
                instr: "i32.store".into(),
            })
            .collect()
    }

    /// The chunks of a stream, concatenated with the final headers written over the
    /// placeholders, are the whole trace's files; the findings are the whole analysis.
    #[test]
    fn chunks_concatenate_to_the_whole_trace() {
        let t = events();
        let options = ExportOptions {
            atomics_as_locks: true,
            lock_requests: false,
        };
        let whole = export(&Trace::new(t.clone(), locations()), options).unwrap();
        for size in [1, 10, 333, t.len()] {
            let mut stream = Stream::new(locations(), options, None);
            let (mut bin, mut std, mut wg) = (Vec::new(), Vec::new(), Vec::new());
            for part in t.chunks(size) {
                let c = stream.consume(part.to_vec()).unwrap().unwrap();
                bin.extend_from_slice(&c.rapid_bin);
                std.extend_from_slice(&c.std);
                wg.extend_from_slice(&c.native);
            }
            assert_eq!(stream.consume(Vec::new()).unwrap(), None);
            let s = stream.finish(None).unwrap();
            bin[..rapid_bin::HEADER_LEN].copy_from_slice(&s.totals.rapid_bin_header);
            wg[..native::HEADER_LEN].copy_from_slice(&s.totals.native_header);
            assert_eq!(bin, whole.rapid_bin().unwrap());
            assert_eq!(std, whole.std_text().as_bytes());
            assert_eq!(wg, native::encode(&t));
            assert_eq!(s.totals.metadata, whole.metadata);
            assert_eq!(s.findings, analyze(&t));
            assert_eq!(s.totals.events, t.len() as u64);
            assert_eq!(
                s.totals.acquisitions,
                whole.std_text().matches("|acq(").count() as u64
            );
            assert_eq!(s.totals.bytes, (bin.len() + std.len() + wg.len()) as u64);
            assert!(
                s.totals.lock_consistency.is_none() && s.totals.fork_join_consistency.is_none()
            );
        }
    }

    /// A stream with a timeline: the chunks' parts and the end make one JSON document,
    /// the same for any chunk size.
    #[test]
    fn timeline_parts_make_one_document() {
        let t = events();
        let mut whole = None;
        for size in [7, 100, t.len()] {
            let mut stream =
                Stream::new(locations(), ExportOptions::default(), None).with_timeline(locations());
            let mut doc = String::new();
            for part in t.chunks(size) {
                doc.push_str(&stream.consume(part.to_vec()).unwrap().unwrap().timeline);
            }
            let summary = stream.finish(None).unwrap();
            summary.timeline.unwrap().finish(
                &wasmgrind_core::analysis::report::report(&summary.findings, &locations(), None),
                &mut doc,
            );
            let v: serde_json::Value = serde_json::from_str(&doc).expect("the timeline is JSON");
            assert!(v["traceEvents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["cat"] == "lock"));
            match &whole {
                None => whole = Some(v),
                Some(w) => assert_eq!(&v, w, "chunks of {size}"),
            }
        }
        // Without a timeline, chunks carry none.
        let mut stream = Stream::new(locations(), ExportOptions::default(), None);
        assert_eq!(stream.consume(t.clone()).unwrap().unwrap().timeline, "");
        assert!(stream.finish(None).unwrap().timeline.is_none());
    }

    /// Without the export, the findings, counts and timeline are those of the exported
    /// stream, and no chunk carries bytes.
    #[test]
    fn without_export_only_the_detectors_see_the_events() {
        let t = events();
        let mut full = Stream::new(locations(), ExportOptions::default(), None);
        let mut bare = Stream::new(locations(), ExportOptions::default(), None)
            .without_export()
            .with_timeline(locations());
        for part in t.chunks(100) {
            full.consume(part.to_vec()).unwrap().unwrap();
            let c = bare.consume(part.to_vec()).unwrap().unwrap();
            assert_eq!(c.bytes(), 0, "chunk {} carries bytes", c.index);
            assert!(!c.timeline.is_empty(), "the timeline still comes");
        }
        let (full, bare) = (full.finish(None).unwrap(), bare.finish(None).unwrap());
        assert_eq!(bare.findings, full.findings);
        assert_eq!(bare.findings, analyze(&t));
        assert_eq!(bare.totals.events, full.totals.events);
        assert_eq!(bare.totals.acquisitions, full.totals.acquisitions);
        assert_eq!(bare.totals.bytes, 0);
        assert_eq!(bare.totals.metadata.counts.events, 0, "no dense events");
    }

    /// An empty trace still gets chunk 0, with the placeholder headers.
    #[test]
    fn an_empty_trace_has_a_header_chunk() {
        let mut stream = Stream::new(vec![], ExportOptions::default(), None);
        let c = stream.consume(Vec::new()).unwrap().unwrap();
        assert_eq!(c.index, 0);
        assert_eq!(c.rapid_bin, vec![0; rapid_bin::HEADER_LEN]);
        assert_eq!(c.native, native::header(None));
        assert_eq!(stream.consume(Vec::new()).unwrap(), None);
    }

    /// The chunk that passes the byte limit is the last one; later events are dropped.
    #[test]
    fn the_byte_limit_ends_the_trace_after_its_chunk() {
        let t = events();
        let mut stream = Stream::new(locations(), ExportOptions::default(), Some(1000));
        let first = stream.consume(t[..10].to_vec()).unwrap().unwrap();
        assert!(first.bytes() < 1000);
        assert_eq!(stream.bytes_reached(), None);
        let second = stream.consume(t[10..100].to_vec()).unwrap().unwrap();
        let reached = stream.bytes_reached().unwrap();
        assert_eq!(reached.events, 100);
        assert_eq!(reached.bytes, first.bytes() + second.bytes());
        assert_eq!(reached.limit, 1000);
        assert_eq!(stream.consume(t[100..].to_vec()).unwrap(), None);
        assert_eq!(stream.finish(None).unwrap().totals.events, 100);
    }

    /// With an analysis worker (a thread running `Offload::run`) that attaches after the
    /// first chunks, the chunks are analyzed in order, partly here and partly there: the
    /// findings and the checks' verdicts are those of one analysis of the whole trace, and
    /// the manager never has more than its capacity of events waiting (plus one chunk).
    #[test]
    fn an_analysis_worker_finds_what_the_stream_would() {
        let t = events();
        let mut stream = Stream::new(locations(), ExportOptions::default(), None);
        // Room for two or three of the chunks below, so that the manager waits for the
        // worker now and then.
        stream.analysis = Arc::new(Offload::with_capacity(80));
        let offload = stream.offload();
        let parts: Vec<_> = t.chunks(37).collect();
        for part in &parts[..3] {
            stream.consume(part.to_vec()).unwrap().unwrap();
        }
        let worker = {
            let offload = Arc::clone(&offload);
            std::thread::spawn(move || offload.run())
        };
        while !offload.attached.load(SeqCst) {
            std::thread::yield_now();
        }
        for part in &parts[3..] {
            while offload.full() {
                std::thread::yield_now();
            }
            stream.consume(part.to_vec()).unwrap().unwrap();
            assert!(offload.in_flight.load(SeqCst) < 80 + 37);
        }
        while offload.busy() {
            std::thread::yield_now();
        }
        let s = stream.finish(None).unwrap();
        worker.join().unwrap();
        assert_eq!(s.findings, analyze(&t));
        assert!(s.totals.lock_consistency.is_none() && s.totals.fork_join_consistency.is_none());
        // After `finish`, a worker that comes late does not wait for chunks.
        offload.run();
    }
}
