#!/usr/bin/env node
// The Wasmgrind command line: run a function of a module with tracing and write the trace.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { wasmgrind } from './wasmgrind.js';

// ANCHOR: help
const HELP = `\
Usage: wasmgrind run <module.wasm> <function> [options]
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

\`analyze\` runs the detectors again on the trace.wgtrace and locations.json in DIR and
prints the reports; with --module (the module that was run) they name source lines.

Options:
  --out DIR            directory for the trace files (default: wasmgrind-out; created)
  --no-memory-trace    record forks, joins and locks only, no memory accesses (faster)
  --timeout S          stop and fail the run after S seconds (default: 60); the error lists
                       every unfinished thread and the lock it is blocked on, and the trace
                       recorded so far is written
  --stack-size BYTES   stack size of every thread but the first (default: 2097152)
  --max-threads N      thread ids available at once (default: 1024, RapidBin's limit)
  --atomics-as-locks   export every atomic access as acquire/release of a per-address lock
  --lock-requests      export lock requests too (req(L) in STD; upstream RAPID cannot read them)
  -h, --help           show this help

Exit status (as ThreadSanitizer's): 0 when the function returned and nothing was found,
66 when a data race, a potential deadlock or a deadlock was found (the reports are on
stderr), 1 when the run failed for another reason (a trap or panic in any thread, a
timeout, a module that cannot be run; the error is on stderr), 2 for a usage error.
`;
// ANCHOR_END: help

class UsageError extends Error {}

/** Exit status when the detectors found something (ThreadSanitizer's default). */
const EXIT_FOUND = 66;

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
  if (argv.includes('-h') || argv.includes('--help')) return { help: true };
  const [command, ...rest] = argv;
  if (command === 'analyze') return parseAnalyze(rest);
  if (command !== 'run') throw new UsageError(`unknown command \`${command}\``);
  const positional = [];
  const options = {};
  let out = 'wasmgrind-out';
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const value = () => {
      if (i + 1 >= rest.length) throw new UsageError(`${a} needs a value`);
      return rest[++i];
    };
    const number = (v, what) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${a} needs a positive ${what}, not \`${v}\``);
      return n;
    };
    switch (a) {
      case '--out':
        out = value();
        break;
      case '--no-memory-trace':
        options.memoryTrace = false;
        break;
      case '--timeout':
        options.timeout = number(value(), 'number of seconds') * 1000;
        break;
      case '--stack-size':
        options.stackSize = number(value(), 'number of bytes');
        break;
      case '--max-threads':
        options.maxThreads = number(value(), 'integer');
        break;
      case '--atomics-as-locks':
        options.atomicsAsLocks = true;
        break;
      case '--lock-requests':
        options.lockRequests = true;
        break;
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option \`${a}\``);
        positional.push(a);
    }
  }
  if (positional.length !== 2) {
    throw new UsageError(`\`run\` needs <module.wasm> and <function>, got ${positional.length} argument(s)`);
  }
  return { command: 'run', module: positional[0], fn: positional[1], out, options };
}

async function writeTrace(dir, trace) {
  await mkdir(dir, { recursive: true });
  const files = {
    bin: join(dir, 'trace.bin'),
    std: join(dir, 'trace.std'),
    json: join(dir, 'trace.json'),
  };
  await writeFile(files.bin, trace.rapidbin);
  await writeFile(files.std, trace.std);
  await writeFile(files.json, `${JSON.stringify(trace.metadata, null, 2)}\n`);
  await writeFile(join(dir, 'trace.wgtrace'), trace.native);
  await writeFile(join(dir, 'locations.json'), trace.locations);
  await writeFile(join(dir, 'report.txt'), trace.report);
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(trace.findings, null, 2)}\n`);
  return files;
}

/** Whether a report (the JSON form) has any finding. */
function found(findings) {
  const c = findings.counts;
  return c.races + c.potential_deadlocks + c.deadlocks > 0;
}

async function analyze(args) {
  const glue = await import('./wasmgrind_js.js');
  const { readFile } = await import('node:fs/promises');
  const read = async (name) => {
    try {
      return await readFile(join(args.dir, name));
    } catch (e) {
      throw new Error(`cannot read ${join(args.dir, name)} (${e.code || e.message}); is ${args.dir} the --out directory of \`wasmgrind run\`?`);
    }
  };
  const wasm = await readFile(new URL('./wasmgrind_js_bg.wasm', import.meta.url));
  glue.initSync({ module: new WebAssembly.Module(wasm) });
  const native = await read('trace.wgtrace');
  const locations = (await read('locations.json')).toString('utf8');
  const original = args.module === null ? undefined : await readFile(args.module);
  const r = glue.analyzeTrace(native, locations, original, glue.defaultStackSize());
  const findings = JSON.parse(r.findings);
  process.stderr.write(r.report);
  return found(findings) ? EXIT_FOUND : 0;
}

function summary(trace) {
  const c = trace.metadata.counts;
  const acquisitions = (trace.std.match(/\|acq\(/g) || []).length;
  return [
    `  threads:   ${c.threads}`,
    `  events:    ${c.events}`,
    `  locks:     ${c.locks} (${acquisitions} acquisitions)`,
    `  variables: ${c.variables}, locations: ${c.locations}`,
  ];
}

async function main(argv) {
  let args;
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`wasmgrind: ${e.message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.command === 'analyze') {
    try {
      return await analyze(args);
    } catch (e) {
      process.stderr.write(`wasmgrind: error: ${e.message}\n`);
      return 1;
    }
  }
  let result;
  try {
    result = await wasmgrind(args.module, args.fn, args.options);
  } catch (e) {
    process.stderr.write(`wasmgrind: error: ${e.message}\n`);
    if (e.wasmStack) {
      const frames = e.wasmStack.split('\n').filter((l) => l.includes('wasm://'));
      for (const f of frames.slice(0, 8)) process.stderr.write(`wasmgrind:   ${f.trim()}\n`);
    }
    if (e.others) for (const o of e.others) process.stderr.write(`wasmgrind: also: ${o}\n`);
    if (e.trace && e.trace.rapidbin) {
      if (e.trace.report) process.stderr.write(e.trace.report);
      const files = await writeTrace(args.out, e.trace);
      process.stderr.write(`wasmgrind: the trace up to the failure is in ${files.bin}, ${files.std}, ${files.json}\n`);
    }
    if (e.kind === 'UsageError') return 2;
    return e.kind === 'DeadlockError' ? EXIT_FOUND : 1;
  }
  const lines = [`wasmgrind: \`${args.fn}\` of ${args.module} returned`];
  if (result.rapidbin) {
    process.stderr.write(result.report);
    const files = await writeTrace(args.out, result);
    lines.push(...summary(result));
    lines.push(`  forks:     ${result.threads.forks} (thread ids used: ${result.threads.ids})`);
    if (result.lockConsistency) lines.push(`  warning: the trace is not lock-consistent: ${result.lockConsistency}`);
    lines.push(`  trace:     ${files.bin} (RapidBin), ${files.std} (STD), ${files.json} (metadata)`);
    const c = result.findings.counts;
    lines.push(`  found:     ${c.races} data race(s), ${c.potential_deadlocks} potential deadlock(s)`);
  }
  for (const d of result.detached) {
    lines.push(
      `  note: thread ${d.tid} was still ${d.state} when \`${args.fn}\` returned (a detached thread); it was stopped`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return result.findings && found(result.findings) ? EXIT_FOUND : 0;
}

process.exitCode = await main(process.argv.slice(2));
