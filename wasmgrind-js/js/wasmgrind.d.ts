// Types of the Wasmgrind JS runtime (wasmgrind.js).

/** Options of {@link wasmgrind}. Every field is optional. */
export interface WasmgrindOptions {
  /** Record every memory access (address, width, atomic). Default `true`. */
  memoryTrace?: boolean;
  /**
   * Sample the plain memory accesses instead of recording every one: each code site (a
   * function's body outside its loops, or one loop) records its first 8 executions in a
   * thread, then fewer and fewer, down to one in 1000. Atomics, waits, locks, forks and
   * joins are always recorded, so every race reported is real, but a race is missed when
   * one of its accesses was not sampled, which is likely in code that runs often. The
   * report then starts with a note that says so, and `findings.sampled` is `true`. Needs
   * `memoryTrace` and `trace`. Default `false`: every access is recorded.
   */
  sampling?: boolean;
  /**
   * Instrument and record at all; `false` runs the patched module untraced, and then
   * `onChunk`, `timeline`, `maxEvents` and `maxTraceBytes` are usage errors. Default `true`.
   */
  trace?: boolean;
  /** Stack size in bytes of every thread but the first: a multiple of 16, at least 4096. Default 2 MiB. */
  stackSize?: number;
  /**
   * Milliseconds until the run is stopped and rejected with the state of every thread
   * (kind `Timeout`). Default 60000; `Infinity` disables it.
   */
  timeout?: number;
  /**
   * Thread ids available (default 1024, what RapidBin holds). Ids are unique until this many
   * were handed out; after that, ids of joined threads (of a wasi module: of ended threads)
   * are reused. A thread creation beyond the limit fails in the guest with the ABI's
   * `ThreadLimit` code (a wasi module's `thread-spawn` returns `-EAGAIN`, -6).
   */
  maxThreads?: number;
  /**
   * Most events recorded; a run that records more stops and fails with a `LimitError`
   * (the trace up to the limit comes with it). Default `Infinity`: no limit.
   */
  maxEvents?: number;
  /**
   * Most bytes of trace (RapidBin, STD and the native format together), checked after
   * every chunk; a run whose trace passes it stops and fails with a `LimitError`. Default
   * `Infinity`: no limit.
   */
  maxTraceBytes?: number;
  /** Most events per chunk of the streamed trace. Default 131072. */
  chunkEvents?: number;
  /**
   * Receives the trace chunk by chunk while the program runs; the run waits for a
   * returned promise before it sends more (a few chunks may be on their way). The result
   * then carries the final headers instead of the trace bytes. Default `null`: the result
   * carries the whole trace.
   */
  onChunk?: ((chunk: TraceChunk) => void | Promise<void>) | null;
  /** Export every atomic access as acquire/release of a per-address pseudo-lock. Default `false`. */
  atomicsAsLocks?: boolean;
  /** Export lock requests too (`req(L)` in STD; upstream RAPID cannot read them). Default `false`. */
  lockRequests?: boolean;
  /**
   * Also write a timeline of the run (Chrome trace-event JSON: threads as tracks, lock holds
   * as slices, forks and joins as arrows, findings as marks; the time axis is the position
   * of events in the trace). Default `false`.
   */
  timeline?: boolean;
  /**
   * Make the trace's formats (RapidBin, STD, the native format, the metadata). `false`: the
   * result has `findings` and `report` but no trace (`rapidbin`, `std`, `native` and
   * `metadata` are null), and a run with memory tracing takes about a third less time.
   * Not with `onChunk` or `maxTraceBytes`. Default `true`.
   */
  exportTrace?: boolean;
  /**
   * Recognise lock words among the atomics (std's futex `Mutex`, spin locks) as locks, for
   * deadlock prediction and the live deadlock check; needs `memoryTrace`. Default `null`:
   * on for wasi-threads modules, off for wasmgrind-ABI modules (whose locks are traced).
   */
  recognizeLocks?: boolean | null;
  /** Idle workers kept ready so that a thread starts without waiting for a worker. Default 2. */
  spareWorkers?: number;
  /**
   * Thread workers started with the run, in parallel, while the module is prepared; 0 (the
   * default) starts one for the first thread plus `spareWorkers`. A program with many
   * threads alive at once starts them sooner when this is their number plus one (at most 4096).
   * Up to this many idle workers stay through idle moments of the run (more linger for 2 s),
   * and are kept for the next call when the run ends cleanly (see {@link closeIdleWorkers}).
   */
  workers?: number;
  /**
   * wasi modules: the program's arguments after its name (argv[1..]); argv[0] is the
   * module's file name, or `main.wasm` when it was given as bytes. Default `[]`.
   */
  args?: string[];
  /**
   * wasi modules: argv[0], the program's name. Default `null`: the module's file name, or
   * `main.wasm` when it was given as bytes.
   */
  programName?: string | null;
  /** wasi modules: the environment, `{ NAME: value }`. Default `{}`: no variables. */
  env?: Record<string, string>;
  /**
   * wasi modules: receives what the program writes to stdout or stderr as it is written,
   * in order per stream: `bytes` exactly as written (binary output included), `text` the
   * same decoded as UTF-8 (a character split between two writes comes with the second;
   * bytes that are no UTF-8 come as U+FFFD; at the very end, the rest of a split
   * character may come as text without bytes). The result (or the error) has the whole
   * output as text in `stdout` and `stderr` either way. If it throws, or returns a promise
   * that rejects (it is not awaited), the run stops with an `OutputError`; a promise that
   * rejects only after the run has ended (resolved or rejected) changes nothing, so a
   * caller whose writes may still fail then awaits them itself. Default `null`.
   */
  onOutput?: ((stream: 'stdout' | 'stderr', text: string, bytes: Uint8Array) => void | Promise<void>) | null;
  /**
   * Stops the run when aborted, as its `timeout` does: the threads are stopped and the run
   * rejects with a `Stopped` error that carries the trace and the findings so far (the
   * CLI's first Ctrl-C). A signal aborted before the call rejects at once. Default `null`.
   */
  signal?: AbortSignal | null;
}

/** The state of one thread when a run ended (see {@link WasmgrindError.threads}). */
export interface ThreadState {
  /** The runtime's thread id (0 is the thread that ran the function). */
  tid: number;
  /** `pending` (created, not started), `running`, `finished` (not joined) or `failed`. */
  state: 'pending' | 'running' | 'finished' | 'failed';
  /** The worker that ran it. */
  worker?: number;
  /** The thread it is blocked joining. */
  joining?: number;
  /** The lock (address) it requested and does not hold: it is blocked on it. */
  waitingOn?: number;
  /** The thread that holds `waitingOn`. */
  lockHolder?: number;
  /** `true` when `lockHolder` has ended without releasing the lock: the wait never ends. */
  holderEnded?: boolean;
  /** The locks (addresses) it holds. */
  holds?: number[];
}

/** The sizes of the trace's dense id spaces and its number of exported events. */
export interface TraceCounts {
  threads: number;
  locks: number;
  variables: number;
  locations: number;
  events: number;
}

/**
 * The JSON metadata that maps the dense ids of the trace back (see the book). Reading it
 * (`metadata`) from a result whose `metadataBytes` are too long for one string throws a
 * `LimitError` (variant `StringTooLong`); `metadataBytes` always work.
 */
export interface TraceMetadata {
  format_version: number;
  atomics_as_locks: boolean;
  counts: TraceCounts;
  /** `threads[n]` is the runtime's thread id of `T<n>`. */
  threads: number[];
  /** `locks[n]` is the address of `L<n>` and whether it is a real lock or an atomic pseudo-lock. */
  locks: { address: number; kind: 'lock' | 'atomic' }[];
  /** `variables[n]` is the address and width of `V<n>`. */
  variables: { address: number; width: number }[];
  /**
   * `locations[n]` is the instrumented instruction of dense location `n`, or null.
   * `func_name` is the raw name from the name section, `function` the same demangled.
   */
  locations: ({ id: number; func_index: number; func_name: string | null; function: string | null; code_offset: number; instr: string } | null)[];
}

/** A source position of a report (see the book, "Finding races and deadlocks"). */
export interface Frame {
  /** The function, demangled; `raw_function` as in the name section. */
  function: string | null;
  raw_function: string | null;
  /** From DWARF, when the guest has line tables. */
  file: string | null;
  line: number | null;
  column: number | null;
  code_offset: number;
  instr: string;
  /** Functions inlined at this instruction, innermost first. */
  inlined?: { function: string | null; file: string | null; line: number | null; column: number | null }[];
}

/** One access of a data race. */
export interface AccessReport {
  thread: number;
  kind: 'read' | 'write' | 'rmw';
  addr: number;
  width: number;
  atomic: boolean;
  location: number | null;
  frame: Frame | null;
}

/** What the detectors found, resolved to functions and source lines. */
export interface Findings {
  races: { addr: number; current: AccessReport; previous: AccessReport; count: number }[];
  potential_deadlocks: {
    edges: {
      thread: number;
      held: number;
      held_location: number | null;
      held_at: Frame | null;
      next: number;
      next_location: number | null;
      next_at: Frame | null;
    }[];
    count: number;
  }[];
  deadlock: {
    threads: { thread: number; waiting_on: number; holder: number; requested_location: number | null; requested_at: Frame | null }[];
  } | null;
  counts: { races: number; potential_deadlocks: number; deadlocks: number };
  /** Why the search for potential deadlocks stopped early, if it did. */
  deadlock_search_incomplete: string | null;
  /** Present and `true` when the run sampled its memory accesses (option `sampling`). */
  sampled?: true;
  /**
   * Present when the run did not trace memory (`memoryTrace: false`): no data race can be
   * found. `'locks'`: potential deadlocks were predicted from the locks that were recorded;
   * `'nothing'`: a wasi program, whose std locks are recognized from its memory accesses,
   * so nothing was checked. The report starts with a note that says so.
   */
  locksOnly?: 'locks' | 'nothing';
}

/**
 * One piece of a streamed trace: the bytes of consecutive events in each format. The
 * chunks' bytes, concatenated in order, are the trace files, whose headers come last: chunk
 * 0 starts with placeholders of the headers' lengths (18 bytes of RapidBin, 24 of the
 * native format), which the result's `rapidbinHeader` and `nativeHeader` replace.
 */
export interface TraceChunk {
  /** 0, 1, 2, ...: the chunks arrive in order. */
  index: number;
  /** Recorded events in the chunk. */
  events: number;
  /** RapidBin event words (chunk 0: the header placeholder first). */
  rapidbin: Uint8Array;
  /** STD lines as ASCII bytes. */
  std: Uint8Array;
  /** Native records (chunk 0: the header of an unfinished trace first). */
  native: Uint8Array;
  /** With the option `timeline`: the timeline's part for these events; otherwise empty. */
  timeline: string;
}

/** A recorded trace in the three formats (without the bytes when it was streamed). */
export interface Trace {
  /** The trace in RapidBin, the binary format of the RAPID tools; null when streamed. */
  rapidbin: Uint8Array | null;
  /**
   * The trace as STD text, one event per line; null when streamed. Decoded from `stdBytes`
   * on first access (which takes time for a large trace, on the thread that accesses it).
   */
  std: string | null;
  /** The trace as STD text in ASCII bytes, as received (no decoding); null when streamed. */
  stdBytes: Uint8Array | null;
  /** Every event in Wasmgrind's own format; null when streamed. */
  native: Uint8Array | null;
  /**
   * What every dense id stands for. Parsed from `metadataBytes` on first access (which
   * takes time for a large trace: one entry per variable).
   */
  metadata: TraceMetadata;
  /** The metadata as UTF-8 JSON bytes, as received (no parsing). */
  metadataBytes: Uint8Array;
  /** `metadata.counts`, without parsing the metadata. */
  metadataCounts: TraceCounts;
  /** Number of recorded events. */
  events: number;
  /** Why the trace is not lock-consistent (a Wasmgrind bug), or null. */
  lockConsistency: string | null;
  /** Why the forks and joins are not consistent (a Wasmgrind bug), or null. */
  forkJoinConsistency: string | null;
  /** The location table (JSON) that the events' locations index. */
  locations: string;
  /** What the detectors found, and the same as text shaped like ThreadSanitizer's reports. */
  findings: Findings;
  report: string;
  /** Whether the trace went to `onChunk`. */
  streamed: boolean;
  /** The final RapidBin header (18 bytes), to be written over chunk 0's placeholder. */
  rapidbinHeader: Uint8Array;
  /** The final native header (24 bytes), to be written over chunk 0's placeholder. */
  nativeHeader: Uint8Array;
  /**
   * With the option `timeline`: the timeline (Chrome trace-event JSON for Perfetto or
   * chrome://tracing); null when streamed to `onChunk` (the chunks' `timeline` parts and
   * `timelineEnd` make it) or without the option.
   */
  timeline: string | null;
  /**
   * With `timeline`: the end of the timeline, after the last chunk's part (what streaming
   * callers append; `timeline` already ends with it).
   */
  timelineEnd: string | null;
  /** Exported `acq` events. */
  acquisitions: number;
  /** Chunks of the trace. */
  chunks: number;
  /** Bytes of RapidBin, STD and the native format together. */
  bytes: number;
}

/**
 * What {@link wasmgrind} resolves to. With `trace: false` the trace fields are null; with
 * `exportTrace: false` the trace's bytes, `metadata` and the headers are null.
 */
export interface WasmgrindResult {
  /** The trace in RapidBin; null untraced or streamed (`onChunk`). */
  rapidbin: Uint8Array | null;
  /**
   * The trace as STD text; null untraced or streamed. It arrives as bytes (`stdBytes`) and
   * is decoded on its first access, on the accessing thread: for a trace of millions of
   * events that takes a noticeable time (read `stdBytes` to save or send the text).
   */
  std: string | null;
  /** The trace as STD text in ASCII bytes (no decoding); null untraced or streamed. */
  stdBytes: Uint8Array | null;
  /** Every event in Wasmgrind's own format; null untraced or streamed. */
  native: Uint8Array | null;
  /**
   * What every dense id stands for; null untraced. It arrives as JSON bytes
   * (`metadataBytes`) and is parsed on its first access, on the accessing thread: for a
   * trace with millions of variables that takes a noticeable time.
   */
  metadata: TraceMetadata | null;
  /** The metadata as UTF-8 JSON bytes (no parsing); null untraced. */
  metadataBytes: Uint8Array | null;
  /** `metadata.counts`, without parsing the metadata; null untraced. */
  metadataCounts: TraceCounts | null;
  /**
   * `ok`: the function returned, or a wasi program called `proc_exit(0)`; `exit`: a wasi
   * program called `proc_exit` with another code (`exitCode`).
   */
  status: 'ok' | 'exit';
  /**
   * The module's ABI, from its imports: `wasi` (wasi-threads and WASI preview1: a program
   * built for wasm32-wasip1-threads, not patched) or `wasmgrind` (`wasmgrind-guest`).
   */
  abi: 'wasi' | 'wasmgrind';
  /** 0 when the function returned; a wasi program's `proc_exit` code otherwise. */
  exitCode: number;
  /** The thread that called `proc_exit`, or 0 (also when the function returned). */
  exitThread: number;
  /** What a wasi program wrote to stdout and stderr (empty for the wasmgrind ABI). */
  stdout: string;
  stderr: string;
  /** Threads still running (or not started) when the function returned; they were stopped. */
  detached: ThreadState[];
  /** `forks`: threads created; `ids`: thread ids used (including 0). */
  threads: { forks: number; ids: number };
  events: number;
  locations: string | null;
  lockConsistency: string | null;
  forkJoinConsistency: string | null;
  /** What the detectors found (null without tracing), and the same as text. */
  findings: Findings | null;
  report: string | null;
  /** Whether the trace went to `onChunk`. */
  streamed: boolean;
  /** The final RapidBin header (18 bytes), or null untraced. */
  rapidbinHeader: Uint8Array | null;
  /** The final native header (24 bytes), or null untraced. */
  nativeHeader: Uint8Array | null;
  /**
   * With the option `timeline`: the timeline (Chrome trace-event JSON for Perfetto or
   * chrome://tracing); null when streamed to `onChunk` (the chunks' `timeline` parts and
   * `timelineEnd` make it) or without the option.
   */
  timeline: string | null;
  /**
   * With `timeline`: the end of the timeline, after the last chunk's part (what streaming
   * callers append; `timeline` already ends with it).
   */
  timelineEnd: string | null;
  /** Exported `acq` events. */
  acquisitions: number;
  /** Chunks of the trace. */
  chunks: number;
  /** Bytes of RapidBin, STD and the native format together. */
  traceBytes: number;
  /** Bytes of the target's and the utility module's memory at the end of the run. */
  memory: { target: number; utility: number };
  /**
   * Milliseconds: reading, patching, instrumenting and compiling the module (`prepareMs`);
   * the function's own run on thread 0, from its call to its return (`functionMs`);
   * stopping the threads and exporting the trace (`finishMs`).
   */
  timings: {
    prepareMs: number;
    functionMs: number;
    finishMs: number;
    /**
     * Thread workers of the previous call that this run started with instead of booting
     * new ones (see {@link closeIdleWorkers}); 0 when there were none.
     */
    workersKept: number;
    /**
     * Traced runs, over the whole run (chunk by chunk while the program ran, and at its
     * end): moving the threads' events into chunks.
     */
    collectMs?: number;
    /** Traced runs, over the whole run: the detectors and their report. */
    analysisMs?: number;
    /** Traced runs, over the whole run: every trace format, with its parts in `export`. */
    exportMs?: number;
    /** The dense ids (`denseMs`) are shared by RapidBin, STD and the metadata. */
    export?: { nativeMs: number; denseMs: number; rapidbinMs: number; stdMs: number; metadataMs: number };
  };
}

/** The error of a failed run. */
export class WasmgrindError extends Error {
  /**
   * What went wrong: `UsageError`, `PatchError`, `InstrumentError`, `EntryError`,
   * `UnsupportedImport`, `Trap`, `GuestPanic`, `LinkError`, `RuntimeError`, `Timeout`,
   * `Stopped` (the `signal` was aborted),
   * `DeadlockError`, `LimitError`, `FormatError`, `SessionError`, `StopFailed`,
   * `WorkerError`, `ChunkError` (the `onChunk` callback failed), `OutputError` (the
   * `onOutput` callback threw or its promise rejected), `OutOfMemory` (Wasmgrind's utility
   * module, which analyzes and exports the trace, filled its memory: 4 GiB at most; the
   * message says how to record less).
   */
  kind: string;
  /** `LimitError`: the events in the trace when the limit was reached. */
  events?: number;
  /** The variant of a Rust error type (`kind` ending in `Error`), e.g. `MemoryNotShared`. */
  variant?: string;
  /** The thread that trapped or panicked. */
  thread?: number;
  /** The ABI status code of a guest panic (100 GuestPanic, 101 OutOfMemory, ...). */
  code?: number;
  /** A guest panic's message. */
  panicMessage?: string;
  /** A trap's message, and the stack of the trapping thread. */
  trapMessage?: string;
  /** The stack with the WebAssembly functions' names demangled. */
  wasmStack?: string;
  /** The stack as the engine wrote it (raw, mangled names). */
  rawWasmStack?: string;
  /** Timeout: the state of every thread; other run failures: `threadStates`. */
  threads?: ThreadState[];
  threadStates?: ThreadState[];
  /** Timeout: the threads blocked on a lock. */
  blockedOnLocks?: number[];
  /** Further failures after the first one. */
  others?: string[];
  /** DeadlockError: the threads that wait for each other's locks, in cycle order. */
  cycle?: { thread: number; waiting_on: number; holder: number }[];
  /**
   * Trap of a wasi module: the trap is the abort of a Rust panic (a panic aborts on
   * wasm32-wasip1-threads; its message is in `stderr`).
   */
  rustPanic?: boolean;
  /** Run failures (not errors before the run): the module's ABI, and always null. */
  abi?: 'wasi' | 'wasmgrind';
  exitCode?: null;
  /** Run failures: what a wasi program wrote to stdout and stderr until then. */
  stdout?: string;
  stderr?: string;
  /** The trace recorded up to the failure, when it could be read, and its findings. */
  trace?: Trace;
  findings?: Findings;
  report?: string;
  constructor(kind: string, message: string, props?: object);
}

/** The default options. */
export const DEFAULT_OPTIONS: Readonly<Required<WasmgrindOptions>>;

/** The first line of the report of a run with `sampling` (it ends with a newline). */
export const SAMPLED_NOTE: string;
/**
 * The notes a report starts with for what its run did not record: `SAMPLED_NOTE` for
 * `findings.sampled`, and the locks-only note for `findings.locksOnly` (empty if neither).
 */
export function findingsNotes(findings: Findings | null | undefined): string;

/**
 * Runs the exported function `functionName` (no parameters, no results) of the module
 * `binary` with real threads and records what every thread did. `binary` is a path (Node),
 * a URL, the module's bytes (which are copied, not taken), or a `Response` (of `fetch`, not
 * read yet) or `Blob` (a file of an `<input type=file>`) to read them from. In a browser the
 * run's worker fetches a URL and reads a Blob itself, off the calling thread. Callable from any thread,
 * including a browser page's main thread: the run happens in a worker. A wasi module (built
 * for wasm32-wasip1-threads) runs `_start` when `functionName` is missing or null.
 */
export function wasmgrind(
  binary: string | URL | ArrayBuffer | SharedArrayBuffer | ArrayBufferView | Response | Blob,
  functionName: string | null | undefined,
  options?: WasmgrindOptions,
): Promise<WasmgrindResult>;

/**
 * One run in the calling thread (what wgrind_worker.js does). The calling thread may block
 * briefly and runs nothing else of Wasmgrind; use {@link wasmgrind} instead.
 */
export function runSession(
  binary: string | URL | ArrayBuffer | SharedArrayBuffer | ArrayBufferView | Response | Blob,
  functionName: string | null | undefined,
  options?: WasmgrindOptions,
  hooks?: {
    onChunk?: (chunk: TraceChunk) => Promise<void>;
    onOutput?: (stream: 'stdout' | 'stderr', text: string, bytes: Uint8Array) => void;
    /** argv[0] of a wasi program (default: the file name of `binary`, or `main.wasm`). */
    programName?: string;
    /** Called with a function that stops the run (as its timeout does), once it can be stopped. */
    onStoppable?: (stop: () => void) => void;
    /** Called when the run was stopped (timeout, `stop`), before its end is prepared. */
    onStopping?: () => void;
    /**
     * Called before the result is returned when the run ended cleanly and kept its idle
     * workers: the calling thread may then run the next run, which starts with them.
     */
    onReusable?: () => void;
  },
): Promise<WasmgrindResult>;

/**
 * Terminates the workers that {@link wasmgrind} keeps between calls. A call that ends
 * cleanly (every thread ended, no failure) keeps its manager worker and its idle thread
 * workers for the next call, which then starts without booting workers; they hold a few
 * megabytes each and the utility memory of that run (a run whose utility memory grew
 * beyond 256 MiB keeps nothing). Those beyond `workers` (or 4 and twice `spareWorkers`)
 * close 2 s later unless a call took them. In Node.js they never keep the process alive.
 * Resolves once they are terminated.
 */
export function closeIdleWorkers(): Promise<void>;

/** argv[0] of a wasi program run from `binary`: its file name (a path, URL, Response URL or File), or `main.wasm` for bytes. */
export function programNameOf(binary: string | URL | ArrayBuffer | SharedArrayBuffer | ArrayBufferView | Response | Blob): string;

/** A plain, cloneable object with every property of an error. */
export function serializeError(e: unknown): { message: string; kind: string; [key: string]: unknown };
