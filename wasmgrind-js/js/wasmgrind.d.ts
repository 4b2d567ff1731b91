// Types of the Wasmgrind JS runtime (wasmgrind.js).

/** Options of {@link wasmgrind}. Every field is optional. */
export interface WasmgrindOptions {
  /** Record every memory access (address, width, atomic). Default `true`. */
  memoryTrace?: boolean;
  /** Instrument and record at all; `false` runs the patched module untraced. Default `true`. */
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
   * were handed out; after that, ids of joined threads are reused. A thread creation beyond
   * the limit fails in the guest with the ABI's `ThreadLimit` code.
   */
  maxThreads?: number;
  /** Most events recorded; a run that records more fails with `RecordError`. Default 16777216. */
  maxEvents?: number;
  /** Export every atomic access as acquire/release of a per-address pseudo-lock. Default `false`. */
  atomicsAsLocks?: boolean;
  /** Idle workers kept ready so that a thread starts without waiting for a worker. Default 2. */
  spareWorkers?: number;
  /**
   * Thread workers started with the run, in parallel, while the module is prepared; 0 (the
   * default) starts one for the first thread plus `spareWorkers`. A program with many
   * threads alive at once starts them sooner when this is their number plus one (at most 4096).
   */
  workers?: number;
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
  /** The locks (addresses) it holds. */
  holds?: number[];
}

/** The JSON metadata that maps the dense ids of the trace back (see the book). */
export interface TraceMetadata {
  format_version: number;
  atomics_as_locks: boolean;
  counts: { threads: number; locks: number; variables: number; locations: number; events: number };
  /** `threads[n]` is the runtime's thread id of `T<n>`. */
  threads: number[];
  /** `locks[n]` is the address of `L<n>` and whether it is a real lock or an atomic pseudo-lock. */
  locks: { address: number; kind: 'lock' | 'atomic' }[];
  /** `variables[n]` is the address and width of `V<n>`. */
  variables: { address: number; width: number }[];
  /** `locations[n]` is the instrumented instruction of dense location `n`, or null. */
  locations: ({ id: number; func_index: number; func_name: string | null; code_offset: number; instr: string } | null)[];
}

/** A recorded trace in the three formats. */
export interface Trace {
  /** The trace in RapidBin, the binary format of the RAPID tools. */
  rapidbin: Uint8Array;
  /** The trace as STD text, one event per line. */
  std: string;
  /** What every dense id stands for. */
  metadata: TraceMetadata;
  /** Number of recorded events. */
  events: number;
  /** Why the trace is not lock-consistent (a Wasmgrind bug), or null. */
  lockConsistency: string | null;
}

/** What {@link wasmgrind} resolves to. With `trace: false` the trace fields are null. */
export interface WasmgrindResult {
  rapidbin: Uint8Array | null;
  std: string | null;
  metadata: TraceMetadata | null;
  /** `ok`: the function returned. */
  status: 'ok';
  /** Threads still running (or not started) when the function returned; they were stopped. */
  detached: ThreadState[];
  /** `forks`: threads created; `ids`: thread ids used (including 0). */
  threads: { forks: number; ids: number };
  events: number;
  lockConsistency: string | null;
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
    /** Of `finishMs`, in traced runs: merging the threads' events. */
    collectMs?: number;
    /** Of `finishMs`, in traced runs: the detectors and their report. */
    analysisMs?: number;
    /** Of `finishMs`, in traced runs: every trace format, with its parts in `export`. */
    exportMs?: number;
    /** RapidBin and STD each include the dense ids (`denseMs`) that they share. */
    export?: { nativeMs: number; denseMs: number; rapidbinMs: number; stdMs: number; metadataMs: number };
  };
}

/** The error of a failed run. */
export class WasmgrindError extends Error {
  /**
   * What went wrong: `UsageError`, `PatchError`, `InstrumentError`, `EntryError`,
   * `UnsupportedImport`, `Trap`, `GuestPanic`, `LinkError`, `RuntimeError`, `Timeout`,
   * `RecordError`, `FormatError`, `SessionError`, `StopFailed`, `WorkerError`.
   */
  kind: string;
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
  wasmStack?: string;
  /** Timeout: the state of every thread; other run failures: `threadStates`. */
  threads?: ThreadState[];
  threadStates?: ThreadState[];
  /** Timeout: the threads blocked on a lock. */
  blockedOnLocks?: number[];
  /** Further failures after the first one. */
  others?: string[];
  /** The trace recorded up to the failure, when it could be read. */
  trace?: Trace;
  constructor(kind: string, message: string, props?: object);
}

/** The default options. */
export const DEFAULT_OPTIONS: Readonly<Required<WasmgrindOptions>>;

/**
 * Runs the exported function `functionName` (no parameters, no results) of the module
 * `binary` with real threads and records what every thread did. `binary` is a path (Node),
 * a URL, or the module's bytes (which are copied, not taken). Callable from any thread,
 * including a browser page's main thread: the run happens in a worker.
 */
export function wasmgrind(
  binary: string | URL | ArrayBuffer | ArrayBufferView,
  functionName: string,
  options?: WasmgrindOptions,
): Promise<WasmgrindResult>;

/**
 * One run in the calling thread (what wgrind_worker.js does). The calling thread may block
 * briefly and runs nothing else of Wasmgrind; use {@link wasmgrind} instead.
 */
export function runSession(
  binary: string | URL | ArrayBuffer | ArrayBufferView,
  functionName: string,
  options?: WasmgrindOptions,
): Promise<WasmgrindResult>;

/** A plain, cloneable object with every property of an error. */
export function serializeError(e: unknown): { message: string; kind: string; [key: string]: unknown };
