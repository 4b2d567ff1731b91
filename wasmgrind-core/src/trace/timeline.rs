//! A timeline of a run in the Chrome trace-event JSON format, which Perfetto
//! (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! What it shows:
//!
//! - every thread as a track (its `tid` is the runtime's thread id), with a slice for the
//!   thread's life, from its first event to its last (a thread that recorded nothing of
//!   its own, in a locks-only trace say, from its fork to its join, or to the end);
//! - every lock hold as a slice inside it, from the acquire to the release (named by the
//!   lock's address; a hold that lasts to the end of the trace ends there). Slices on a
//!   track must nest: a hold that outlives one taken before it (take A, take B, release
//!   A) is drawn as two slices, cut where the earlier one ends;
//! - a fork as a flow arrow from the spawning thread to the child's first event, and a
//!   join as a flow arrow from the child's last event to the joining thread;
//! - the findings of the detectors as instant events: a data race on both threads, at the
//!   first time each of the two accesses' instructions ran on its thread; a lock-order
//!   cycle at each of its lock acquisitions the same way; a live deadlock at the end of
//!   each blocked thread.
//!
//! Memory accesses are not drawn (only counted per thread), so the file's size follows the
//! number of synchronization events, not the length of the trace.
//!
//! **Time.** A trace orders its events but has no clock: an event's timestamp is its
//! position in the trace (event `n` is at `n` µs in the viewer). Lengths on the timeline
//! are therefore numbers of events of the whole program, not durations.
//!
//! The writer is fed the trace in order, chunk by chunk, like the other encoders, and
//! keeps state per thread, per held lock and per (thread, location) only.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::analysis::report::{AccessReport, Report};
use crate::analysis::symbolize::demangle;
use crate::location::{Location, LocationId};
use crate::trace::{Event, Lock, Op};

/// The life of one thread on its track.
#[derive(Debug, Clone, Copy)]
struct Life {
    first: u64,
    last: u64,
    /// Memory accesses (reads, writes, read-modify-writes) in this life.
    accesses: u64,
    /// The id of the flow arrow of the fork that started this life, if one did.
    fork_flow: Option<u64>,
}

/// Writes a timeline while the trace streams by; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct TimelineWriter {
    locations: Vec<Location>,
    position: u64,
    /// Whether the opening of the JSON document was written.
    opened: bool,
    /// Whether an element of `traceEvents` was written (the next needs a comma).
    any: bool,
    lives: HashMap<u32, Life>,
    /// Threads in the order they first appeared, for the track names.
    order: Vec<u32>,
    /// The locks each thread holds, in the order it took them: `(lock, since, acquired at)`.
    held: HashMap<u32, Vec<(Lock, u64, Option<LocationId>)>>,
    first_at: HashMap<(u32, LocationId), u64>,
    /// Flow ids and positions of the forks whose child has not run yet.
    forked: HashMap<u32, (u64, u64)>,
    next_flow: u64,
}

impl TimelineWriter {
    /// A writer for events whose locations index `locations`.
    pub fn new(locations: Vec<Location>) -> TimelineWriter {
        TimelineWriter {
            locations,
            position: 0,
            opened: false,
            any: false,
            lives: HashMap::new(),
            order: Vec::new(),
            held: HashMap::new(),
            first_at: HashMap::new(),
            forked: HashMap::new(),
            next_flow: 0,
        }
    }

    /// Appends the timeline's part for `events`, the next events of the trace in order,
    /// to `out` (the first call also writes the opening of the document).
    pub fn events(&mut self, events: &[Event], out: &mut String) {
        self.open(out);
        for e in events {
            let at = self.position;
            self.position += 1;
            if matches!(e.op, Op::NotALock { .. }) {
                // A verdict of the runtime at the end, not something the thread did.
                continue;
            }
            self.touch(e.thread, at, e.op.is_access());
            if let Some(loc) = e.location {
                self.first_at.entry((e.thread, loc)).or_insert(at);
            }
            match e.op {
                Op::Acquire { lock } => {
                    self.held
                        .entry(e.thread)
                        .or_default()
                        .push((lock, at, e.location));
                }
                Op::Release { lock } => self.release(e.thread, lock, at, out),
                Op::Fork { child } => {
                    // A thread id may be used again once its thread ended: the new thread
                    // is a new life on the same track.
                    if let Some(old) = self.lives.remove(&child) {
                        self.life_slice(child, old, out);
                    }
                    // A thread of that id that recorded nothing (locks only, say) lived
                    // from its fork to this one.
                    if let Some(old) = self.silent_life(child, at) {
                        self.life_slice(child, old, out);
                    }
                    self.push(
                        json!({"name": format!("spawn thread {child}"), "cat": "thread",
                               "ph": "X", "pid": 1, "tid": e.thread, "ts": at, "dur": 1,
                               "args": self.at_args(e.location)}),
                        out,
                    );
                    let id = self.flow_id();
                    self.forked.insert(child, (id, at));
                    self.push(
                        json!({"name": "fork", "cat": "fork", "ph": "s", "id": id,
                               "pid": 1, "tid": e.thread, "ts": at}),
                        out,
                    );
                }
                Op::Join { child } => {
                    // A child that recorded nothing lived from its fork to its join.
                    if let Some(life) = self.silent_life(child, at) {
                        self.lives.insert(child, life);
                    }
                    self.push(
                        json!({"name": format!("join thread {child}"), "cat": "thread",
                               "ph": "X", "pid": 1, "tid": e.thread, "ts": at, "dur": 1,
                               "args": self.at_args(e.location)}),
                        out,
                    );
                    if let Some(life) = self.lives.get(&child) {
                        let last = life.last;
                        let id = self.flow_id();
                        self.push(
                            json!({"name": "join", "cat": "join", "ph": "s",
                                   "id": id, "pid": 1, "tid": child, "ts": last}),
                            out,
                        );
                        self.push(
                            json!({"name": "join", "cat": "join", "ph": "f", "bp": "e",
                                   "id": id, "pid": 1, "tid": e.thread, "ts": at}),
                            out,
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Ends the timeline: the thread lives, the holds still open at the end, the findings
    /// as instant events, the track names and the closing of the document, appended to
    /// `out`. The findings are those of `report`, as reported: a race or cycle that the
    /// report merged with others at the same source positions is marked once, with the
    /// merged count, at its representative's code locations.
    pub fn finish(mut self, report: &Report, out: &mut String) {
        self.open(out);
        let end = self.position;
        let mut open: Vec<_> = self
            .held
            .drain()
            .flat_map(|(t, stack)| stack.into_iter().map(move |(l, from, at)| (t, l, from, at)))
            .collect();
        open.sort_unstable_by_key(|&(t, l, from, _)| (from, t, l));
        for (thread, lock, from, acquired_at) in open {
            let last = self.lives.get(&thread).map_or(end, |l| l.last);
            self.lock_slice(thread, lock, from, last.max(from), acquired_at, out);
        }
        for race in &report.races {
            let times = if race.count == 1 { "time" } else { "times" };
            let name = format!("data race on {:#x} ({} {times})", race.addr, race.count);
            let args = json!({
                "current": self.access_text(&race.current),
                "previous": self.access_text(&race.previous),
            });
            for a in [&race.current, &race.previous] {
                let ts = a
                    .location
                    .and_then(|l| self.first_at.get(&(a.thread, l)).copied())
                    .unwrap_or(end);
                self.instant(&name, "race", a.thread, ts, args.clone(), out);
            }
        }
        for cycle in &report.potential_deadlocks {
            let locks: Vec<String> = cycle
                .edges
                .iter()
                .map(|e| format!("{:#x}", e.held))
                .collect();
            let name = format!("lock-order cycle ({})", locks.join(" -> "));
            for edge in &cycle.edges {
                let ts = edge
                    .held_location
                    .and_then(|l| self.first_at.get(&(edge.thread, l)).copied())
                    .unwrap_or(end);
                let args = json!({
                    "holds": format!("{:#x}", edge.held),
                    "acquired at": self.location_text(edge.held_location),
                    "then takes": format!("{:#x}", edge.next),
                    "times": cycle.count,
                });
                self.instant(&name, "deadlock", edge.thread, ts, args, out);
            }
        }
        if let Some(dl) = &report.deadlock {
            for b in &dl.threads {
                let ts = self.lives.get(&b.thread).map_or(end, |l| l.last);
                let name = match b.joining {
                    Some(joined) => format!("deadlocked: waits to join thread {joined}"),
                    None => format!(
                        "deadlocked: waits for lock {:#x} held by thread {}",
                        b.waiting_on, b.holder
                    ),
                };
                let args = json!({"requested at": self.location_text(b.requested_location)});
                self.instant(&name, "deadlock", b.thread, ts, args, out);
            }
        }
        let mut lives: Vec<_> = self.lives.drain().collect();
        // Children that recorded nothing and were not joined: from their fork to the end.
        let mut silent: Vec<u32> = self.forked.keys().copied().collect();
        silent.sort_unstable();
        for child in silent {
            if let Some(life) = self.silent_life(child, end.saturating_sub(1)) {
                lives.push((child, life));
            }
        }
        lives.sort_unstable_by_key(|&(t, l)| (l.first, t));
        for (thread, life) in lives {
            self.life_slice(thread, life, out);
        }
        let order = std::mem::take(&mut self.order);
        for (i, t) in order.into_iter().enumerate() {
            let name = if t == 0 {
                "thread 0 (main)".to_string()
            } else {
                format!("thread {t}")
            };
            self.push(
                json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": {"name": name}}),
                out,
            );
            self.push(
                json!({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": t, "args": {"sort_index": i}}),
                out,
            );
        }
        self.push(
            json!({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "Wasmgrind run"}}),
            out,
        );
        let _ = write!(
            out,
            "\n],\n\"displayTimeUnit\": \"ns\",\n\"otherData\": {{\"time\": \"the position of an event in the trace (event n at n us), not wall time\", \"events\": {end}}}\n}}\n"
        );
    }

    fn open(&mut self, out: &mut String) {
        if !self.opened {
            self.opened = true;
            out.push_str("{\"traceEvents\": [\n");
        }
    }

    fn push(&mut self, value: Value, out: &mut String) {
        if self.any {
            out.push_str(",\n");
        }
        self.any = true;
        let _ = write!(out, "{value}");
    }

    fn flow_id(&mut self) -> u64 {
        self.next_flow += 1;
        self.next_flow
    }

    fn touch(&mut self, thread: u32, at: u64, access: bool) {
        let forked = &mut self.forked;
        let life = self.lives.entry(thread).or_insert_with(|| Life {
            first: at,
            last: at,
            accesses: 0,
            fork_flow: forked.remove(&thread).map(|(id, _)| id),
        });
        if life.first == at && !self.order.contains(&thread) {
            self.order.push(thread);
        }
        life.last = at;
        if access {
            life.accesses += 1;
        }
    }

    /// The life of `child` if it was forked and recorded no event of its own: from its
    /// fork to `until` (its join, the next fork of its id, the end of the trace), so that
    /// it has its track and its fork arrow its end. Takes the pending fork.
    fn silent_life(&mut self, child: u32, until: u64) -> Option<Life> {
        if self.lives.contains_key(&child) {
            return None;
        }
        let (id, from) = self.forked.remove(&child)?;
        if !self.order.contains(&child) {
            self.order.push(child);
        }
        Some(Life {
            first: from,
            last: until.max(from),
            accesses: 0,
            fork_flow: Some(id),
        })
    }

    /// The slice of one life of `thread`, and the child's end of its fork's flow arrow,
    /// which binds to the slice's start.
    fn life_slice(&mut self, thread: u32, life: Life, out: &mut String) {
        self.push(
            json!({"name": format!("thread {thread}"), "cat": "thread", "ph": "X", "pid": 1,
                   "tid": thread, "ts": life.first, "dur": life.last - life.first + 1,
                   "args": {"memory accesses": life.accesses}}),
            out,
        );
        if let Some(id) = life.fork_flow {
            self.push(
                json!({"name": "fork", "cat": "fork", "ph": "f", "bp": "e", "id": id,
                       "pid": 1, "tid": thread, "ts": life.first}),
                out,
            );
        }
    }

    /// `thread` releases `lock` at `at`: the slice of its hold. Slices on a track must
    /// nest, and holds need not (take A, take B, release A): the holds taken after this
    /// one and still held are cut here, each into a slice that ends with this one's and a
    /// new one from here on.
    fn release(&mut self, thread: u32, lock: Lock, at: u64, out: &mut String) {
        let Some(stack) = self.held.get_mut(&thread) else {
            return;
        };
        let Some(i) = stack.iter().rposition(|&(l, _, _)| l == lock) else {
            return;
        };
        let (_, from, acquired_at) = stack.remove(i);
        let mut cut = Vec::new();
        for hold in &mut stack[i..] {
            cut.push(*hold);
            hold.1 = at;
        }
        for (inner, since, inner_at) in cut {
            self.lock_slice(thread, inner, since, at, inner_at, out);
        }
        self.lock_slice(thread, lock, from, at, acquired_at, out);
    }

    fn lock_slice(
        &mut self,
        thread: u32,
        lock: Lock,
        from: u64,
        to: u64,
        acquired_at: Option<LocationId>,
        out: &mut String,
    ) {
        let args = self.at_args(acquired_at);
        self.push(
            json!({"name": format!("lock {lock:#x}"), "cat": "lock", "ph": "X", "pid": 1,
                   "tid": thread, "ts": from, "dur": (to - from).max(1), "args": args}),
            out,
        );
    }

    fn instant(
        &mut self,
        name: &str,
        cat: &str,
        thread: u32,
        ts: u64,
        args: Value,
        out: &mut String,
    ) {
        self.push(
            json!({"name": name, "cat": cat, "ph": "i", "s": "t", "pid": 1, "tid": thread,
                   "ts": ts, "args": args}),
            out,
        );
    }

    fn at_args(&self, loc: Option<LocationId>) -> Value {
        json!({ "at": self.location_text(loc) })
    }

    fn location_text(&self, loc: Option<LocationId>) -> String {
        match loc.and_then(|l| self.locations.get(l as usize)) {
            Some(l) => {
                let name = l
                    .func_name
                    .as_deref()
                    .map_or_else(|| format!("function {}", l.func_index), demangle);
                format!("{name} (code offset {:#x}: {})", l.code_offset, l.instr)
            }
            None => "unknown location".to_string(),
        }
    }

    fn access_text(&self, a: &AccessReport) -> String {
        format!(
            "{:?} of {} bytes at {:#x}{} by thread {}, {}",
            a.kind,
            a.width,
            a.addr,
            if a.atomic { " (atomic)" } else { "" },
            a.thread,
            self.location_text(a.location)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::analysis::report::report;

    fn loc(i: u32) -> Location {
        Location {
            func_index: i,
            func_name: Some(format!("worker_{i}")),
            code_offset: 0x10 * i,
            instr: "i32.store".into(),
        }
    }

    /// Main forks 1 and 2; both write 0x100 without a lock (a race), 1 also takes lock 0x40
    /// around a write of 0x200; main joins both.
    fn racy() -> Vec<Event> {
        let w = |t, addr, l| {
            Event::new(
                t,
                Op::Write {
                    addr,
                    width: 4,
                    atomic: false,
                },
                Some(l),
            )
        };
        vec![
            Event::new(0, Op::Fork { child: 1 }, Some(0)),
            Event::new(0, Op::Fork { child: 2 }, Some(0)),
            Event::new(1, Op::Acquire { lock: 0x40 }, Some(3)),
            w(1, 0x200, 1),
            Event::new(1, Op::Release { lock: 0x40 }, Some(3)),
            w(1, 0x100, 1),
            w(2, 0x100, 2),
            Event::new(0, Op::Join { child: 1 }, Some(0)),
            Event::new(0, Op::Join { child: 2 }, Some(0)),
        ]
    }

    fn timeline(events: &[Event], chunk: usize) -> Value {
        let mut w = TimelineWriter::new((0..4).map(loc).collect());
        let mut out = String::new();
        for part in events.chunks(chunk) {
            w.events(part, &mut out);
        }
        let locations: Vec<Location> = (0..4).map(loc).collect();
        w.finish(&report(&analyze(events), &locations, None), &mut out);
        serde_json::from_str(&out).expect("the timeline is JSON")
    }

    fn find(t: &Value, pred: impl Fn(&Value) -> bool) -> Vec<&Value> {
        t["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .collect()
    }

    #[test]
    fn threads_locks_forks_joins_and_races_are_drawn() {
        let t = timeline(&racy(), 1000);
        // A track name and a life slice per thread.
        for (tid, first, last) in [(0, 0, 8), (1, 2, 5), (2, 6, 6)] {
            let names = find(&t, |e| {
                e["ph"] == "M" && e["name"] == "thread_name" && e["tid"] == tid
            });
            assert_eq!(names.len(), 1, "thread {tid}");
            let life = find(&t, |e| {
                e["ph"] == "X" && e["name"] == format!("thread {tid}")
            });
            assert_eq!(life.len(), 1);
            assert_eq!(life[0]["ts"], first);
            assert_eq!(life[0]["dur"], last - first + 1);
        }
        // The lock hold, from its acquire (2) to its release (4), named by its address.
        let hold = find(&t, |e| e["cat"] == "lock");
        assert_eq!(hold.len(), 1);
        assert_eq!(
            (
                hold[0]["tid"].as_u64(),
                hold[0]["ts"].as_u64(),
                hold[0]["dur"].as_u64()
            ),
            (Some(1), Some(2), Some(2))
        );
        assert_eq!(hold[0]["name"], "lock 0x40");
        assert!(hold[0]["args"]["at"]
            .as_str()
            .unwrap()
            .starts_with("worker_3"));
        // Fork arrows: from main at the fork to the child's first event.
        for (child, at, first) in [(1u64, 0, 2), (2, 1, 6)] {
            let s = find(&t, |e| {
                e["ph"] == "s" && e["cat"] == "fork" && e["ts"] == at
            });
            assert_eq!(s.len(), 1);
            let f = find(&t, |e| {
                e["ph"] == "f" && e["cat"] == "fork" && e["id"] == s[0]["id"]
            });
            assert_eq!(f.len(), 1);
            assert_eq!(
                (s[0]["tid"].as_u64(), s[0]["ts"].as_u64()),
                (Some(0), Some(at))
            );
            assert_eq!(
                (f[0]["tid"].as_u64(), f[0]["ts"].as_u64()),
                (Some(child), Some(first))
            );
        }
        // Join arrows: from the child's last event to main's join.
        for (child, last, at) in [(1u64, 5, 7), (2, 6, 8)] {
            let f = find(&t, |e| {
                e["ph"] == "f" && e["cat"] == "join" && e["ts"] == at
            });
            let s = find(&t, |e| {
                e["ph"] == "s" && e["cat"] == "join" && e["id"] == f[0]["id"]
            });
            assert_eq!(
                (s[0]["tid"].as_u64(), s[0]["ts"].as_u64()),
                (Some(child), Some(last))
            );
            assert_eq!(
                (f[0]["tid"].as_u64(), f[0]["ts"].as_u64()),
                (Some(0), Some(at))
            );
        }
        // The race: an instant on each thread where its access's instruction first ran.
        let race = find(&t, |e| e["ph"] == "i" && e["cat"] == "race");
        let mut at: Vec<_> = race
            .iter()
            .map(|e| (e["tid"].as_u64().unwrap(), e["ts"].as_u64().unwrap()))
            .collect();
        at.sort_unstable();
        assert_eq!(at, vec![(1, 3), (2, 6)]);
        assert!(race[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("data race on 0x100"));
        assert_eq!(t["otherData"]["events"], 9);
    }

    #[test]
    fn chunks_give_the_same_timeline() {
        let whole = timeline(&racy(), 1000);
        for size in [1, 2, 4] {
            assert_eq!(timeline(&racy(), size), whole, "chunks of {size}");
        }
    }

    /// A hold still open at the end ends with its thread; a reused thread id is a second
    /// life on the same track; a lock-order cycle is marked where its locks were taken.
    #[test]
    fn open_holds_reused_ids_and_cycles() {
        let ev = |t, op, l| Event::new(t, op, Some(l));
        let events = vec![
            ev(0, Op::Fork { child: 1 }, 0),
            ev(1, Op::Acquire { lock: 1 }, 1),
            ev(1, Op::Release { lock: 1 }, 1),
            ev(0, Op::Join { child: 1 }, 0),
            ev(0, Op::Fork { child: 1 }, 0),
            ev(0, Op::Fork { child: 2 }, 0),
            ev(1, Op::Acquire { lock: 1 }, 1),
            ev(1, Op::Acquire { lock: 2 }, 2),
            ev(1, Op::Release { lock: 2 }, 2),
            ev(1, Op::Release { lock: 1 }, 1),
            ev(2, Op::Acquire { lock: 2 }, 3),
            ev(2, Op::Acquire { lock: 1 }, 3),
            ev(2, Op::Release { lock: 1 }, 3),
            ev(0, Op::Acquire { lock: 3 }, 0),
        ];
        let t = timeline(&events, 3);
        let lives = find(&t, |e| e["ph"] == "X" && e["name"] == "thread 1");
        let mut spans: Vec<_> = lives
            .iter()
            .map(|e| (e["ts"].as_u64().unwrap(), e["dur"].as_u64().unwrap()))
            .collect();
        spans.sort_unstable();
        assert_eq!(spans, vec![(1, 2), (6, 4)]);
        // Thread 2's lock 2 is never released: the hold ends with the thread (event 12).
        let open = find(&t, |e| {
            e["cat"] == "lock" && e["tid"] == 2 && e["name"] == "lock 0x2"
        });
        assert_eq!(
            (open[0]["ts"].as_u64(), open[0]["dur"].as_u64()),
            (Some(10), Some(2))
        );
        // Main's lock 3, taken by its last event, is a hold of one event.
        assert_eq!(
            find(&t, |e| e["cat"] == "lock" && e["tid"] == 0)[0]["dur"],
            1
        );
        let cycle = find(&t, |e| e["ph"] == "i" && e["cat"] == "deadlock");
        let mut on: Vec<_> = cycle.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
        on.sort_unstable();
        assert_eq!(
            on,
            vec![1, 2],
            "the inversion of locks 1 and 2 is marked on both threads"
        );
        assert!(cycle
            .iter()
            .all(|e| e["name"].as_str().unwrap().starts_with("lock-order cycle")));
    }

    /// Threads that record nothing (a locks-only trace of threads without locks, a trace
    /// cut by a limit) still get their track, and every fork and join arrow both ends.
    #[test]
    fn threads_without_events_get_a_track_and_whole_arrows() {
        let ev = |t, op| Event::new(t, op, None);
        let events = vec![
            ev(0, Op::Fork { child: 1 }),
            ev(0, Op::Fork { child: 2 }),
            ev(0, Op::Join { child: 1 }),
            // Thread 2's id is forked again before thread 2 ran or was joined.
            ev(0, Op::Fork { child: 2 }),
            // Thread 3 is forked and never runs nor is joined before the end.
            ev(0, Op::Fork { child: 3 }),
            ev(0, Op::Join { child: 2 }),
        ];
        let t = timeline(&events, 2);
        for tid in [0, 1, 2, 3] {
            let names = find(&t, |e| {
                e["ph"] == "M" && e["name"] == "thread_name" && e["tid"] == tid
            });
            assert_eq!(names.len(), 1, "a track for thread {tid}");
        }
        // Thread 1 from its fork (0) to its join (2); thread 2 twice; thread 3 to the end.
        let lives = |tid: u32| -> Vec<(u64, u64)> {
            let mut v: Vec<(u64, u64)> = find(&t, |e| {
                e["cat"] == "thread"
                    && e["ph"] == "X"
                    && e["tid"] == tid
                    && e["name"] == format!("thread {tid}")
            })
            .iter()
            .map(|e| (e["ts"].as_u64().unwrap(), e["dur"].as_u64().unwrap()))
            .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(lives(1), vec![(0, 3)]);
        assert_eq!(lives(2), vec![(1, 3), (3, 3)]);
        assert_eq!(lives(3), vec![(4, 2)]);
        for cat in ["fork", "join"] {
            let mut starts: Vec<u64> = find(&t, |e| e["cat"] == cat && e["ph"] == "s")
                .iter()
                .map(|e| e["id"].as_u64().unwrap())
                .collect();
            let mut ends: Vec<u64> = find(&t, |e| e["cat"] == cat && e["ph"] == "f")
                .iter()
                .map(|e| e["id"].as_u64().unwrap())
                .collect();
            starts.sort_unstable();
            ends.sort_unstable();
            assert_eq!(starts, ends, "every {cat} arrow has both ends");
        }
        assert_eq!(find(&t, |e| e["cat"] == "fork" && e["ph"] == "s").len(), 4);
        assert_eq!(find(&t, |e| e["cat"] == "join" && e["ph"] == "s").len(), 2);
    }

    /// Holds released out of order (take A, take B, release A: rayon's sleep does it)
    /// still give slices that nest on the thread's track, as viewers need: B is cut where
    /// A ends.
    #[test]
    fn holds_released_out_of_order_give_nested_slices() {
        let ev = |op| Event::new(0, op, None);
        let events = vec![
            ev(Op::Acquire { lock: 0xa }),
            ev(Op::Acquire { lock: 0xb }),
            ev(Op::Acquire { lock: 0xc }),
            ev(Op::Release { lock: 0xa }),
            ev(Op::Release { lock: 0xc }),
            ev(Op::Release { lock: 0xb }),
        ];
        let t = timeline(&events, 1);
        let mut slices: Vec<(String, u64, u64)> =
            find(&t, |e| e["cat"] == "lock" && e["ph"] == "X")
                .iter()
                .map(|e| {
                    let ts = e["ts"].as_u64().unwrap();
                    (
                        e["name"].as_str().unwrap().to_string(),
                        ts,
                        ts + e["dur"].as_u64().unwrap(),
                    )
                })
                .collect();
        slices.sort_unstable_by_key(|s| (s.1, std::cmp::Reverse(s.2)));
        let name = |l: u32| format!("lock {l:#x}");
        assert_eq!(
            slices,
            vec![
                (name(0xa), 0, 3),
                (name(0xb), 1, 3),
                (name(0xc), 2, 3),
                (name(0xb), 3, 5),
                (name(0xc), 3, 4),
            ]
        );
        // Any two slices nest or do not overlap.
        for x in &slices {
            for y in &slices {
                let nested = (x.1 <= y.1 && y.2 <= x.2) || (y.1 <= x.1 && x.2 <= y.2);
                let apart = x.2 <= y.1 || y.2 <= x.1;
                assert!(nested || apart, "{x:?} and {y:?} overlap");
            }
        }
    }
}
