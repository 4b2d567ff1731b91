#!/usr/bin/env node
// The Wasmgrind command line: run a function of a module with tracing and write the trace.

import { existsSync } from 'node:fs';
import { mkdir, open, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  wasmgrind,
  programNameOf,
  MAX_TIMEOUT_MS,
  findingsNotes,
} from './wasmgrind.js';
import { utilityTrapCause } from './shim.js';

// ANCHOR: help
const HELP = `\
Usage: wasmgrind run <module.wasm> <function> [options]
       wasmgrind run <program.wasm> [options] [-- ARGS...]   (a wasi program: runs _start)
       wasmgrind analyze <DIR> [--module <module.wasm>]
       wasmgrind --help

\`run\` runs the exported function <function> (no parameters, no results) of the
multithreaded WebAssembly module <module.wasm> with real threads in Node.js, records what
every thread did (forks, joins, locks, memory accesses, allocations), looks for data races
and potential deadlocks in the recording, and stops the run as soon as its threads
deadlock. Reports go to stderr, a summary to stdout, and the trace to DIR:

  trace.bin        RapidBin, the binary format of the RAPID family of race and deadlock predictors
  trace.std        the same trace as STD text (one event per line: T0|acq(L0)|3)
  trace.json       metadata: what every dense thread, lock, variable and location id stands for
  trace.wgtrace    every event in Wasmgrind's own format (atomics and allocations included)
  locations.json   the location table the events refer to
  report.txt       the reports as text; report.json the same as JSON

DIR always holds the files of one run: a run removes these files (and no others) from
DIR when it starts, so a --report-only run leaves only its reports, and a run that fails
before its trace began leaves none of them. No output may be the module: a --timeline
or --out that would overwrite or remove it, or a --timeline that is one of these files,
is a usage error.

The trace has no size limit of its own: trace.bin, trace.std and trace.wgtrace are
written while the program runs, chunk by chunk, and the detectors analyze each chunk as
it comes, so memory stays bounded however long the run records. (The headers of trace.bin
and trace.wgtrace are written last; the other files at the end.)

A program built with std for wasm32-wasip1-threads (\`cargo build --target
wasm32-wasip1-threads\`, on stable) runs as it is: without <function> its \`_start\`
runs, ARGS after \`--\` are its arguments (argv[0] is the module's file name), and what it
writes to stdout and stderr goes to the terminal as it comes; Wasmgrind's own summary
then goes to stderr, so that stdout is the program's. \`proc_exit\` (\`std::process::exit\`)
from any thread ends the run with that exit code.

\`analyze\` runs the detectors again on the trace.wgtrace and locations.json in DIR and
prints the reports, with the deadlock the run ended in (if it did) from DIR's report.json
(and, for a --sample run, the note that the trace is a sample);
with --module (the module that was run) they name source lines. A --module whose
function names are not those of the module that was run is a usage error.

When stdout is closed (its reader went away, as in \`wasmgrind run ... | head -1\`), the
rest of what goes there is dropped without an error; the run goes on to its end, writes
its files and the reports, and exits as usual.

Options:
  --out DIR            directory for the trace files (default: wasmgrind-out; created)
  --env NAME=VALUE     an environment variable of a wasi program (repeatable; none by default)
  --no-memory-trace    record forks, joins and locks only, no memory accesses (faster; no race
                       detection, and no recognition of std's Mutex words in wasi programs)
  --sample             record only a sample of the plain memory accesses (much faster on
                       memory-heavy programs): every race reported is real, but a race whose
                       accesses were not sampled is missed; not with --no-memory-trace
  --report-only        look for races and deadlocks without writing the trace (about a third
                       faster with memory tracing): DIR gets report.txt and report.json only,
                       and there is nothing for \`analyze\`; not with --max-trace-bytes
  --timeout S          stop and fail the run after S seconds (default: 60); the error lists
                       every unfinished thread and the lock it is blocked on, and the trace
                       recorded so far is written
  --stack-size BYTES   stack size of every thread but the first (default: 2097152; modules of
                       the wasmgrind ABI: a wasi program's libc sizes its own stacks)
  --max-threads N      thread ids available at once (default: 1024, RapidBin's limit)
  --max-events N       stop and fail the run when the trace reaches N events (default: no
                       limit); the trace up to the limit is written
  --max-trace-bytes N  stop and fail the run when trace.bin, trace.std and trace.wgtrace
                       together pass N bytes (default: no limit; checked after every chunk)
  --chunk-events N     events per chunk of the streamed trace (default: 131072)
  --atomics-as-locks   export every atomic access as acquire/release of a per-address lock
  --lock-requests      export lock requests too (req(L) in STD; upstream RAPID cannot read them)
  --timeline FILE      also write a timeline of the run to FILE: Chrome trace-event JSON that
                       https://ui.perfetto.dev and chrome://tracing open (threads as tracks,
                       lock holds as slices, forks and joins as arrows, findings as marks;
                       time is the position of events in the trace, not wall time)
  --recognize-locks    recognise lock words among the atomics (std's futex Mutex, spin
                       locks) as locks, for deadlock prediction and live deadlocks
                       (the default for wasi programs)
  --no-recognize-locks do not (the default for modules of the wasmgrind ABI)
  -h, --help           show this help

Errors of the command line and of the module are one line on stderr. --out is checked
(and the directory created) before the program starts.

Exit status (as ThreadSanitizer's), first match wins: 2 for a usage error (any wrong
option, an --out that cannot be written, a module that cannot be read); 66 when the
run deadlocked; 130 when Ctrl-C stopped it (the first Ctrl-C stops the run as a timeout
does, and the trace and the reports so far are written; a second one quits at once);
1 when the run failed for another reason (a trap or panic in any
thread, a timeout, a module that cannot be run; the error is on stderr); 66 when the
program ended and a data race or a potential deadlock was found (the reports are on
stderr); otherwise the program's exit code: 0 when the function returned, or the code a
wasi program passed to proc_exit (std::process::exit).
`;
// ANCHOR_END: help

class UsageError extends Error {}

/** Exit status when the detectors found something (ThreadSanitizer's default). */
const EXIT_FOUND = 66;
/** Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it). */
const EXIT_INTERRUPTED = 130;

function parseAnalyze(rest) {
  const positional = [];
  let module = null;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--module') {
      if (i + 1 >= rest.length) throw new UsageError('--module needs a value');
      module = rest[++i];
    } else if (rest[i].startsWith('-')) {
      throw new UsageError(`unknown option \`${rest[i]}\` of \`analyze\``);
    } else {
      positional.push(rest[i]);
    }
  }
  if (positional.length !== 1) {
    throw new UsageError(`\`analyze\` needs one <DIR>, got ${positional.length} argument(s)`);
  }
  return { command: 'analyze', dir: positional[0], module };
}

function parse(argv) {
  if (argv.length === 0) throw new UsageError('missing command');
  const own = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  if (own.includes('-h') || own.includes('--help')) return { help: true };
  const [command, ...tail] = argv;
  let rest = tail;
  if (command === 'analyze') return parseAnalyze(rest);
  if (command !== 'run') throw new UsageError(`unknown command \`${command}\``);
  const positional = [];
  const options = {};
  let out = 'wasmgrind-out';
  let timeline = null;
  const env = {};
  // Everything after `--` is the program's.
  const dashes = rest.indexOf('--');
  const programArgs = dashes < 0 ? [] : rest.slice(dashes + 1);
  if (dashes >= 0) rest = rest.slice(0, dashes);
  // Every wrong option is named, not only the first.
  const problems = [];
  const state = { positional, options, env, setOut: (o) => (out = o), setTimeline: (t) => (timeline = t) };
  for (const cursor = { i: 0 }; cursor.i < rest.length; cursor.i++) {
    try {
      parseRunOption(rest, cursor, state);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      problems.push(e.message);
    }
  }
  if (positional.length < 1 || positional.length > 2) {
    problems.push(
      `\`run\` needs <module.wasm> and, unless it is a wasi program (which runs \`_start\`), ` +
        `<function>; got ${positional.length} argument(s)${positional.length > 2 ? ' (the program\'s own arguments go after `--`)' : ''}`,
    );
  }
  if (options.sampling === true && options.memoryTrace === false) {
    problems.push('--sample samples the memory accesses, which --no-memory-trace does not record: give one of them');
  }
  if (options.exportTrace === false && options.maxTraceBytes !== undefined) {
    problems.push('--max-trace-bytes limits the trace files, which --report-only does not write');
  }
  if (problems.length === 1) throw new UsageError(problems[0]);
  if (problems.length > 1) {
    throw new UsageError(`${problems.length} problems: ${problems.map((p, i) => `(${i + 1}) ${p}`).join('; ')}`);
  }
  if (programArgs.length > 0) options.args = programArgs;
  if (Object.keys(env).length > 0) options.env = env;
  return { command: 'run', module: positional[0], fn: positional[1], out, timeline, options };
}

/**
 * Parses the argument of `run` at `rest[cursor.i]` (and an option's value, which moves
 * `cursor.i` on) into `state`. Throws a UsageError for a wrong one.
 */
function parseRunOption(rest, cursor, state) {
  const { positional, options, env } = state;
  const a = rest[cursor.i];
  const value = () => {
    if (cursor.i + 1 >= rest.length) throw new UsageError(`${a} needs a value`);
    return rest[++cursor.i];
  };
  const number = (v, what) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${a} needs a positive ${what}, not \`${v}\``);
    return n;
  };
  const integer = (v) => {
    const n = number(v, 'integer');
    if (!Number.isSafeInteger(n)) throw new UsageError(`${a} needs a positive integer, not \`${v}\``);
    return n;
  };
  const atMost = (n, max, unit) => {
    if (n > max) throw new UsageError(`${a} must be at most ${max}${unit}, not ${n}`);
    return n;
  };
  switch (a) {
    case '--out': {
      const out = value();
      if (out === '') throw new UsageError('--out needs a directory, not an empty string');
      state.setOut(out);
      break;
    }
    case '--env': {
      const v = value();
      const eq = v.indexOf('=');
      if (eq <= 0) throw new UsageError(`--env needs NAME=VALUE, not \`${v}\``);
      env[v.slice(0, eq)] = v.slice(eq + 1);
      break;
    }
    case '--no-memory-trace':
      options.memoryTrace = false;
      break;
    case '--report-only':
      options.exportTrace = false;
      break;
    case '--sample':
      options.sampling = true;
      break;
    case '--timeout':
      options.timeout = atMost(number(value(), 'number of seconds'), Math.floor(MAX_TIMEOUT_MS / 1000), ' seconds') * 1000;
      break;
    case '--stack-size':
      options.stackSize = integer(value());
      if (options.stackSize % 16 !== 0 || options.stackSize < 4096) {
        throw new UsageError(`--stack-size must be a multiple of 16 of at least 4096 bytes, not ${options.stackSize}`);
      }
      atMost(options.stackSize, 2 ** 31, ' bytes');
      break;
    case '--max-threads':
      options.maxThreads = atMost(integer(value()), 1 << 20, '');
      break;
    case '--max-events':
      options.maxEvents = integer(value());
      break;
    case '--max-trace-bytes':
      options.maxTraceBytes = integer(value());
      break;
    case '--chunk-events':
      options.chunkEvents = atMost(integer(value()), 2 ** 31, '');
      break;
    case '--atomics-as-locks':
      options.atomicsAsLocks = true;
      break;
    case '--lock-requests':
      options.lockRequests = true;
      break;
    case '--timeline': {
      const timeline = value();
      if (timeline === '') throw new UsageError('--timeline needs a file name, not an empty string');
      state.setTimeline(timeline);
      options.timeline = true;
      break;
    }
    case '--recognize-locks':
      options.recognizeLocks = true;
      break;
    case '--no-recognize-locks':
      options.recognizeLocks = false;
      break;
    default:
      if (a.startsWith('-')) {
        // `--timeout=5`: the value goes after a space.
        const eq = a.indexOf('=');
        throw new UsageError(
          eq > 0 ? `unknown option \`${a}\` (write \`${a.slice(0, eq)} ${a.slice(eq + 1)}\`)` : `unknown option \`${a}\``,
        );
      }
      positional.push(a);
  }
}

/** Writes all of `bytes` at `position` (null: the current position) of a file handle. */
async function writeAll(handle, bytes, position = null) {
  let done = 0;
  while (done < bytes.byteLength) {
    const at = position === null ? null : position + done;
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, at);
    done += bytesWritten;
  }
}

/**
 * Every file a run writes in DIR (`--out`). A run removes all of them when it starts
 * (and no other file), so that DIR never mixes the files of two runs: a `--report-only`
 * run writes only the reports, a run that fails early only some or none of them.
 */
const OUT_FILES = ['trace.bin', 'trace.std', 'trace.json', 'trace.wgtrace', 'locations.json', 'report.txt', 'report.json'];

/**
 * The trace files of a run in DIR, written as the trace streams in: each chunk is
 * appended to trace.bin, trace.std and trace.wgtrace (chunk 0 starts with placeholder
 * headers); at the end the real headers are written over the placeholders, and the
 * metadata, the location table and the reports are written.
 */
class TraceFiles {
  constructor(dir, timeline = null, reportOnly = false) {
    this.dir = dir;
    /** The timeline's file (`--timeline`), or null. */
    this.timelinePath = timeline;
    /** `--report-only`: no trace files, only the reports (and the timeline). */
    this.reportOnly = reportOnly;
    this.handles = null;
    this.paths = {
      bin: join(dir, 'trace.bin'),
      std: join(dir, 'trace.std'),
      json: join(dir, 'trace.json'),
      native: join(dir, 'trace.wgtrace'),
    };
  }

  /**
   * Creates the directory and the streamed files. Run before the program starts, so that a
   * directory that cannot be written fails at once. The directory is made one level at a
   * time below its nearest existing ancestor: Node's recursive `mkdir` can loop forever on
   * pseudo file systems such as /proc. The files of an earlier run in the directory
   * (OUT_FILES, nothing else) are removed first, after the timeline's file was opened: a
   * timeline that cannot be written leaves the directory as it was.
   */
  async open() {
    await makeDir(this.dir);
    this.handles = { bin: null, std: null, native: null, timeline: null };
    /** The files this run created (removed again by `close` if no chunk came). */
    this.created = [];
    if (this.timelinePath !== null) {
      try {
        await makeDir(dirname(resolve(this.timelinePath)));
        this.handles.timeline = await open(this.timelinePath, 'w');
        this.created.push(this.timelinePath);
      } catch (e) {
        const error = new Error(`cannot write the timeline to ${this.timelinePath}: ${e.code || e.message}`);
        error.option = 'timeline';
        throw error;
      }
    }
    for (const name of OUT_FILES) {
      const path = join(this.dir, name);
      try {
        await rm(path, { force: true });
      } catch (e) {
        throw new Error(`cannot remove ${path} of an earlier run (${e.code || e.message}); remove it or choose another --out`);
      }
    }
    if (this.reportOnly) {
      // What `--out` must allow is writing the reports: try it now, not after the run.
      await writeFile(join(this.dir, 'report.txt'), '');
      this.created.push(join(this.dir, 'report.txt'));
    } else {
      for (const key of ['bin', 'std', 'native']) {
        this.handles[key] = await open(this.paths[key], 'w');
        this.created.push(this.paths[key]);
      }
    }
  }

  /** Appends one chunk of the trace. */
  async chunk(c) {
    if (this.handles === null) await this.open();
    this.written = true;
    const h = this.handles;
    await Promise.all([
      writeAll(h.bin, c.rapidbin),
      writeAll(h.std, c.std),
      writeAll(h.native, c.native),
      h.timeline !== null && c.timeline ? writeAll(h.timeline, Buffer.from(c.timeline)) : undefined,
    ]);
  }

  /** Writes the headers and the files of the end of the run (`trace` as the run returned it). */
  async finish(trace) {
    if (this.handles === null) await this.open();
    const h = this.handles;
    if (this.reportOnly) {
      // The timeline came whole with the result (no chunks were streamed).
      if (h.timeline !== null && trace.timeline) await writeAll(h.timeline, Buffer.from(trace.timeline));
      this.written = true;
      await this.close();
      await writeFile(join(this.dir, 'report.txt'), trace.report);
      await writeFile(join(this.dir, 'report.json'), `${JSON.stringify(trace.findings, null, 2)}\n`);
      return { report: join(this.dir, 'report.txt') };
    }
    await writeAll(h.bin, trace.rapidbinHeader, 0);
    await writeAll(h.native, trace.nativeHeader, 0);
    if (h.timeline !== null && trace.timelineEnd) await writeAll(h.timeline, Buffer.from(trace.timelineEnd));
    await this.close();
    // As the bytes came: a long run's metadata does not fit in one JavaScript string.
    await writeFile(this.paths.json, Buffer.concat([trace.metadataBytes, Buffer.from('\n')]));
    await writeFile(join(this.dir, 'locations.json'), trace.locations);
    await writeFile(join(this.dir, 'report.txt'), trace.report);
    await writeFile(join(this.dir, 'report.json'), `${JSON.stringify(trace.findings, null, 2)}\n`);
    return this.paths;
  }

  /**
   * Closes the files; whether any chunk was written to them. Files that got no chunk (the
   * run failed before its trace began) are removed.
   */
  async close() {
    if (this.handles === null) return false;
    const h = this.handles;
    this.handles = null;
    await Promise.all([h.bin?.close(), h.std?.close(), h.native?.close(), h.timeline?.close()]);
    if (!this.written) {
      // (--report-only: the empty report.txt that `open` wrote to try the directory.)
      await Promise.all(this.created.map((p) => rm(p, { force: true })));
    }
    return this.written === true;
  }
}

/** Makes directory `dir` and its missing ancestors; fails with a one-line message. */
async function makeDir(dir) {
  const missing = [];
  let at = resolve(dir);
  for (;;) {
    let info = null;
    try {
      info = await stat(at);
    } catch (e) {
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw new Error(`cannot use ${at} (${e.code || e.message})`);
    }
    if (info !== null) {
      if (!info.isDirectory()) throw new Error(`${at} is a file, not a directory`);
      break;
    }
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (e) {
      if (e.code !== 'EEXIST') throw new Error(`cannot create the directory ${d} (${e.code || e.message})`);
    }
  }
}

/**
 * `path` with its nearest existing ancestor replaced by its real path (symbolic links and
 * `..` followed): paths of files that need not exist yet, comparable.
 */
async function canonical(path) {
  const rest = [];
  let at = resolve(path);
  for (;;) {
    try {
      return join(await realpath(at), ...rest);
    } catch {
      const up = dirname(at);
      if (up === at) return resolve(path);
      rest.unshift(basename(at));
      at = up;
    }
  }
}

/** Whether paths `a` and `b` name one file: the same real path, or the same inode (a hard link). */
async function sameFile(a, b) {
  if ((await canonical(a)) === (await canonical(b))) return true;
  const id = async (p) => {
    try {
      const s = await stat(p, { bigint: true });
      return `${s.dev}:${s.ino}`;
    } catch {
      return null;
    }
  };
  const [x, y] = await Promise.all([id(a), id(b)]);
  return x !== null && x === y;
}

/**
 * Why the run's outputs cannot be written, or null: an output that is the module (which
 * writing it would destroy: the files in DIR are removed or overwritten, the timeline
 * overwritten), or a timeline that is one of the files the run writes in DIR.
 */
async function outputClash(args) {
  const outs = OUT_FILES.map((name) => join(args.out, name));
  for (const p of outs) {
    if (await sameFile(p, args.module)) {
      return `--out ${args.out}: ${p} is the module ${args.module}, and a run replaces that file; choose another --out directory (or move the module)`;
    }
  }
  if (args.timeline === null) return null;
  if (await sameFile(args.timeline, args.module)) {
    return `--timeline ${args.timeline} is the module ${args.module}, which the timeline would overwrite; write the timeline to another file`;
  }
  for (const p of outs) {
    if (await sameFile(args.timeline, p)) {
      return `--timeline ${args.timeline} is ${p}, a file the run writes in --out ${args.out}; write the timeline to another file`;
    }
  }
  return null;
}

/**
 * Whether stdout was closed under us (EPIPE: the reader of the pipe went away, as in
 * `wasmgrind run app.wasm | head -1`). Command-line tools then stop writing output and end
 * without a word; Node would throw an unhandled 'error' event with a stack trace instead.
 * Wasmgrind stops writing to stdout (the program's output and the summary are dropped) but
 * lets the run go on to its end, since the trace files and the reports are what the run
 * is for: they are written to their files and the reports to stderr, and the exit status
 * is the run's as usual (66 for a finding), which is what `set -o pipefail` then shows.
 * The program itself is not told: its writes to stdout succeed. A closed stderr is
 * ignored the same way.
 */
let stdoutClosed = false;
process.stdout.on('error', () => {
  stdoutClosed = true;
});
process.stderr.on('error', () => {});

/** Writes `data` (text or bytes) to stdout unless stdout was closed. */
function toStdout(data) {
  if (!stdoutClosed) process.stdout.write(data);
}

/** `message` on one line: the command line prints one line per error. */
function oneLine(message) {
  return String(message).replace(/\s*\n\s*/g, ' ');
}

/** Kinds of errors found before the program runs: their message is always one line. */
const BEFORE_RUN = new Set(['UsageError', 'PatchError', 'InstrumentError', 'EntryError', 'UnsupportedImport', 'LinkError']);

/** Whether a report (the JSON form) has any finding. */
function found(findings) {
  const c = findings.counts;
  return c.races + c.potential_deadlocks + c.deadlocks > 0;
}

/**
 * Why `module` (the bytes of --module) is not the module whose run made the location
 * table `locations` (locations.json: every location names its function by index, and by
 * its name in the name section when the module had one), or null. A table without names
 * cannot be checked.
 */
function moduleMismatch(glue, module, locations) {
  let names;
  try {
    // wasmparser, in the utility module, reads the name section.
    const list = JSON.parse(glue.functionNames(module));
    names = list === null ? null : new Map(list);
  } catch (e) {
    return e.message;
  }
  const quote = (name) => `\`${name}\``;
  for (const l of locations) {
    if (l.func_name === null || l.func_name === undefined) continue;
    if (names === null) return `it has no function names (no name section), but the module that was run had (function ${l.func_index} was ${quote(l.func_name)})`;
    const own = names.get(l.func_index);
    if (own !== l.func_name) {
      return `its function ${l.func_index} is ${own === undefined ? 'unnamed or missing' : quote(own)}, but in the module that was run it was ${quote(l.func_name)}`;
    }
  }
  return null;
}

/**
 * What the trace in `dir` cannot show, from the run's report.json (a run removes an
 * earlier run's, so it is this run's): `deadlock`, the deadlock the run ended in, as
 * `TraceAnalysis.finish` takes it, or undefined (it is the runtime's view of the threads
 * at the end, not an event), and `sampled`, whether the run sampled its memory accesses
 * (`--sample`). A report.json that cannot be read is said, not fatal.
 */
async function savedReport(dir) {
  const path = join(dir, 'report.json');
  let saved;
  try {
    saved = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    if (e.code !== 'ENOENT') {
      process.stderr.write(
        `wasmgrind: note: cannot read ${path} (${e.code || e.message}): a deadlock the run ended in is not shown, ` +
          'nor whether it was sampled\n',
      );
    }
    return { deadlock: undefined, notes: '', runError: null };
  }
  const runError = saved?.runError;
  return {
    deadlock: savedDeadlock(saved),
    // What the run did not record (sampled, locks-only), as its report said.
    notes: findingsNotes(saved),
    runError: typeof runError?.kind === 'string' && typeof runError?.message === 'string' ? runError : null,
  };
}

/** The deadlock of a run's report.json, as `TraceAnalysis.finish` takes it, or undefined. */
function savedDeadlock(saved) {
  const d = saved && saved.deadlock;
  if (!d || !Array.isArray(d.threads)) return undefined;
  const threads = d.threads.map((t) => ({
    thread: t.thread,
    waiting_on: t.waiting_on,
    holder: t.holder,
    joining: t.joining ?? null,
    requested_at: t.requested_location ?? null,
  }));
  return JSON.stringify({ threads });
}

/** Bytes `analyze` reads from trace.wgtrace at a time: a multiple of the 20-byte record. */
const ANALYZE_BLOCK = 20 << 20;

async function analyze(args) {
  const glue = await import('./wasmgrind_js.js');
  const cannotRead = (name, e) =>
    new Error(
      `cannot read ${join(args.dir, name)} (${e.code || e.message}); is ${args.dir} the --out directory of \`wasmgrind run\`?`,
    );
  const wasm = await readFile(new URL('./wasmgrind_js_bg.wasm', import.meta.url));
  const utility = glue.initSync({ module: new WebAssembly.Module(wasm) });
  let nativeFile;
  try {
    nativeFile = await open(join(args.dir, 'trace.wgtrace'), 'r');
  } catch (e) {
    if (e.code === 'ENOENT' && existsSync(join(args.dir, 'report.json'))) {
      throw new Error(
        `${args.dir} has reports but no trace.wgtrace: it is the directory of a \`wasmgrind run --report-only\`, ` +
          `which writes no trace to analyze again; its reports are in ${join(args.dir, 'report.txt')} ` +
          '(run without --report-only to keep the trace)',
      );
    }
    throw cannotRead('trace.wgtrace', e);
  }
  let r;
  let saved;
  try {
    let locations;
    try {
      locations = (await readFile(join(args.dir, 'locations.json'))).toString('utf8');
    } catch (e) {
      throw cannotRead('locations.json', e);
    }
    let original;
    if (args.module !== null) {
      try {
        original = await readFile(args.module);
      } catch (e) {
        throw new UsageError(`--module ${args.module}: cannot read it (${e.code || e.message})`);
      }
      // The module names the source lines of the locations: another module's would be
      // wrong ones, silently. Its function names must be the location table's.
      let table;
      try {
        table = JSON.parse(locations);
      } catch (e) {
        throw new Error(`${join(args.dir, 'locations.json')} is not a location table (${e.message}); is ${args.dir} the --out directory of \`wasmgrind run\`?`);
      }
      const mismatch = Array.isArray(table) ? moduleMismatch(glue, original, table) : null;
      if (mismatch !== null) {
        throw new UsageError(
          `--module ${args.module} is not the module that was run for ${args.dir}: ${mismatch}; ` +
            'pass the module that was given to `wasmgrind run`, or leave out --module (the reports then name functions, not source lines)',
        );
      }
    }
    // The trace is read and analyzed block by block, so a trace of any length fits.
    const analysis = new glue.TraceAnalysis(locations);
    const block = new Uint8Array(ANALYZE_BLOCK);
    for (;;) {
      const { bytesRead } = await nativeFile.read(block, 0, block.byteLength, null);
      if (bytesRead === 0) break;
      analysis.feed(block.subarray(0, bytesRead));
    }
    saved = await savedReport(args.dir);
    r = analysis.finish(original, glue.defaultStackSize(), saved.deadlock);
    analysis.free();
  } catch (e) {
    // A trap of the utility module: what it left of its cause (out of memory, a panic).
    const cause = e instanceof WebAssembly.RuntimeError ? utilityTrapCause(glue, utility.memory) : null;
    if (cause === null) throw e;
    throw new Error(
      cause.outOfMemory
        ? `${cause.head} It was analyzing ${join(args.dir, 'trace.wgtrace')}, whose accesses need more state than ` +
            'that: the race detector keeps 8 bytes per byte accessed (is the file damaged? an access of a huge size ' +
            'needs that much)'
        : cause.message,
    );
  } finally {
    await nativeFile.close();
  }
  const findings = JSON.parse(r.findings);
  // A sampled run's trace holds only the accesses it sampled: its report says so again.
  // So does a locks-only run's (no memory accesses: no race can be found), and a run that
  // failed (a timeout, Ctrl-C) says that its trace ends where the run was stopped.
  const notes =
    (saved.runError !== null
      ? `The run ended with ${saved.runError.kind}: ${saved.runError.message}\nIts trace holds what was recorded until then.\n`
      : '') +
    saved.notes;
  process.stderr.write(notes + r.report);
  return found(findings) ? EXIT_FOUND : 0;
}

function summary(trace) {
  const c = trace.metadataCounts;
  return [
    `  threads:   ${c.threads}`,
    `  events:    ${c.events}`,
    `  locks:     ${c.locks} (${trace.acquisitions} acquisitions)`,
    `  variables: ${c.variables}, locations: ${c.locations}`,
  ];
}

async function main(argv) {
  let args;
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`wasmgrind: ${oneLine(e.message)} (wasmgrind --help shows the usage)\n`);
    return 2;
  }
  if (args.help) {
    toStdout(HELP);
    return 0;
  }
  if (args.command === 'analyze') {
    try {
      return await analyze(args);
    } catch (e) {
      if (e instanceof UsageError) {
        process.stderr.write(`wasmgrind: ${oneLine(e.message)}\n`);
        return 2;
      }
      process.stderr.write(`wasmgrind: error: ${oneLine(e.message)}\n`);
      return 1;
    }
  }
  let result;
  const reportOnly = args.options.exportTrace === false;
  const files = new TraceFiles(args.out, args.timeline, reportOnly);
  if (!existsSync(args.module)) {
    process.stderr.write(`wasmgrind: no file ${args.module} (wasmgrind --help shows the usage)\n`);
    return 2;
  }
  // The module is read before any output file is created, truncated or removed, and no
  // output may be the module: `--timeline app.wasm` once truncated the module and then
  // removed it as an empty timeline.
  let bytes;
  try {
    bytes = await readFile(args.module);
  } catch (e) {
    process.stderr.write(`wasmgrind: cannot read the module ${args.module} (${e.code || e.message})\n`);
    return 2;
  }
  const clash = await outputClash(args);
  if (clash !== null) {
    process.stderr.write(`wasmgrind: ${clash}\n`);
    return 2;
  }
  try {
    await files.open();
  } catch (e) {
    const option = e.option === 'timeline' ? `--timeline ${args.timeline}` : `--out ${args.out}`;
    process.stderr.write(`wasmgrind: ${option}: ${oneLine(e.message)}\n`);
    // Files opened before the one that failed are closed and, empty, removed.
    await files.close().catch(() => {});
    return 2;
  }
  // A wasi program's output goes to the terminal as it comes, byte for byte (binary
  // output included: `wasmgrind run prog.wasm > out.bin`).
  const onOutput = (stream, _text, bytes) =>
    bytes.length === 0 ? undefined : stream === 'stdout' ? toStdout(bytes) : process.stderr.write(bytes);
  try {
    // The trace streams into its files; with --report-only there is none to stream.
    const streaming = reportOnly ? {} : { onChunk: (c) => files.chunk(c) };
    // The bytes read above, under the module's file name (a wasi program's argv[0]).
    const programName = programNameOf(args.module);
    // The first Ctrl-C stops the run as its timeout would: the trace and the reports so
    // far are written. A second one quits at once.
    const interrupt = new AbortController();
    const onSigint = () => {
      if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED);
      process.stderr.write('\nwasmgrind: interrupted: stopping the run and writing what it recorded (Ctrl-C again to quit at once)\n');
      interrupt.abort();
    };
    process.on('SIGINT', onSigint);
    try {
      result = await wasmgrind(bytes, args.fn, { ...args.options, ...streaming, onOutput, programName, signal: interrupt.signal });
    } finally {
      process.off('SIGINT', onSigint);
    }
  } catch (e) {
    process.stderr.write(`wasmgrind: error: ${BEFORE_RUN.has(e.kind) ? oneLine(e.message) : e.message}\n`);
    if (e.wasmStack) {
      const frames = e.wasmStack.split('\n').filter((l) => l.includes('wasm://'));
      for (const f of frames.slice(0, 8)) process.stderr.write(`wasmgrind:   ${f.trim()}\n`);
    }
    if (e.others) for (const o of e.others) process.stderr.write(`wasmgrind: also: ${o}\n`);
    if (e.trace) {
      if (e.trace.report) process.stderr.write(e.trace.report);
      // report.json keeps how the run ended, for `analyze` to say it again (a deadlock is
      // in the report already, as its finding).
      if (e.trace.findings && e.kind !== 'DeadlockError') {
        e.trace.findings.runError = { kind: e.kind, message: oneLine(e.message) };
      }
      const paths = await files.finish(e.trace);
      process.stderr.write(
        reportOnly
          ? `wasmgrind: the reports up to the failure are in ${paths.report} and report.json\n`
          : `wasmgrind: the trace up to the failure is in ${paths.bin}, ${paths.std}, ${paths.json}\n`,
      );
    } else if (await files.close()) {
      process.stderr.write(
        `wasmgrind: the trace files in ${args.out} are incomplete (their headers were not written) and cannot be read\n`,
      );
    }
    if (e.kind === 'UsageError') return 2;
    if (e.kind === 'Stopped') return EXIT_INTERRUPTED;
    return e.kind === 'DeadlockError' ? EXIT_FOUND : 1;
  }
  const wasi = result.abi === 'wasi';
  const fn = args.fn ?? '_start';
  const lines = [
    wasi
      ? `wasmgrind: \`${fn}\` of ${args.module} ${
          result.exitCode === 0 && result.exitThread === 0
            ? 'returned'
            : // proc_exit's code is unsigned: `exit(-1)` is 4294967295 (the process's status is its low byte).
              `exited with code ${result.exitCode}${result.exitCode > 0x7fffffff ? ` (${result.exitCode | 0})` : ''}`
        }${result.exitThread !== 0 ? ` (proc_exit in thread ${result.exitThread})` : ''}`
      : `wasmgrind: \`${fn}\` of ${args.module} returned`,
  ];
  if (reportOnly && result.findings) {
    process.stderr.write(result.report);
    const paths = await files.finish(result);
    lines.push(`  events:    ${result.events} (${result.acquisitions} lock acquisitions)`);
    lines.push(`  forks:     ${result.threads.forks} (thread ids used: ${result.threads.ids})`);
    if (result.lockConsistency) lines.push(`  warning: the trace is not lock-consistent: ${result.lockConsistency}`);
    lines.push(`  reports:   ${paths.report}, report.json (--report-only: no trace files)`);
    if (args.timeline !== null) lines.push(`  timeline:  ${args.timeline} (open it in https://ui.perfetto.dev or chrome://tracing)`);
    const c = result.findings.counts;
    lines.push(`  found:     ${c.races} data race(s), ${c.potential_deadlocks} potential deadlock(s)`);
  } else if (result.metadataBytes) {
    process.stderr.write(result.report);
    const paths = await files.finish(result);
    lines.push(...summary(result));
    lines.push(`  forks:     ${result.threads.forks} (thread ids used: ${result.threads.ids})`);
    if (result.lockConsistency) lines.push(`  warning: the trace is not lock-consistent: ${result.lockConsistency}`);
    lines.push(`  trace:     ${paths.bin} (RapidBin), ${paths.std} (STD), ${paths.json} (metadata)`);
    if (args.timeline !== null) lines.push(`  timeline:  ${args.timeline} (open it in https://ui.perfetto.dev or chrome://tracing)`);
    const c = result.findings.counts;
    lines.push(`  found:     ${c.races} data race(s), ${c.potential_deadlocks} potential deadlock(s)`);
  }
  for (const d of result.detached) {
    lines.push(
      `  note: thread ${d.tid} was still ${d.state} when \`${fn}\` ${wasi ? 'ended' : 'returned'} (a detached thread); it was stopped`,
    );
  }
  // A wasi program's stdout is its own: the summary goes to stderr then.
  if (wasi) process.stderr.write(`${lines.join('\n')}\n`);
  else toStdout(`${lines.join('\n')}\n`);
  if (result.findings && found(result.findings)) return EXIT_FOUND;
  return result.exitCode ?? 0;
}

// Anything that escapes (a trace file that cannot be written at the end, for example) is
// one line and exit status 1, never a stack trace.
process.exitCode = await main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`wasmgrind: error: ${oneLine(e && e.message ? e.message : e)}\n`);
  return 1;
});
