#!/usr/bin/env node
// The Wasmgrind command line: run a function of a module with tracing and write the trace.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { wasmgrind } from './wasmgrind.js';

// ANCHOR: help
const HELP = `\
Usage: wasmgrind run <module.wasm> <function> [options]
       wasmgrind --help

Runs the exported function <function> (no parameters, no results) of the multithreaded
WebAssembly module <module.wasm> with real threads in Node.js, records what every thread
did (forks, joins, lock requests, acquisitions and releases, and memory accesses), and
writes the trace to DIR:

  trace.bin    RapidBin, the binary format of the RAPID family of race and deadlock predictors
  trace.std    the same trace as STD text (one event per line: T0|acq(L0)|3)
  trace.json   metadata: what every dense thread, lock, variable and location id stands for

Then it prints a summary: threads, events, locks.

Options:
  --out DIR            directory for the trace files (default: wasmgrind-out; created)
  --no-memory-trace    record forks, joins and locks only, no memory accesses (faster)
  --timeout S          stop and fail the run after S seconds (default: 60); the error lists
                       every unfinished thread and the lock it is blocked on, and the trace
                       recorded so far is written
  --stack-size BYTES   stack size of every thread but the first (default: 2097152)
  --max-threads N      thread ids available at once (default: 1024, RapidBin's limit)
  --atomics-as-locks   export every atomic access as acquire/release of a per-address lock
  -h, --help           show this help

Exit status: 0 when the function returned, 1 when the run failed (a trap or panic in any
thread, a timeout, a module that cannot be run; the error is on stderr), 2 for a usage
error.
`;
// ANCHOR_END: help

class UsageError extends Error {}

function parse(argv) {
  if (argv.length === 0) throw new UsageError('missing command');
  if (argv.includes('-h') || argv.includes('--help')) return { help: true };
  const [command, ...rest] = argv;
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
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option \`${a}\``);
        positional.push(a);
    }
  }
  if (positional.length !== 2) {
    throw new UsageError(`\`run\` needs <module.wasm> and <function>, got ${positional.length} argument(s)`);
  }
  return { module: positional[0], fn: positional[1], out, options };
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
  return files;
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
      const files = await writeTrace(args.out, e.trace);
      process.stderr.write(`wasmgrind: the trace up to the failure is in ${files.bin}, ${files.std}, ${files.json}\n`);
    }
    return e.kind === 'UsageError' ? 2 : 1;
  }
  const lines = [`wasmgrind: \`${args.fn}\` of ${args.module} returned`];
  if (result.rapidbin) {
    const files = await writeTrace(args.out, result);
    lines.push(...summary(result));
    lines.push(`  forks:     ${result.threads.forks} (thread ids used: ${result.threads.ids})`);
    if (result.lockConsistency) lines.push(`  warning: the trace is not lock-consistent: ${result.lockConsistency}`);
    lines.push(`  trace:     ${files.bin} (RapidBin), ${files.std} (STD), ${files.json} (metadata)`);
  }
  for (const d of result.detached) {
    lines.push(
      `  note: thread ${d.tid} was still ${d.state} when \`${args.fn}\` returned (a detached thread); it was stopped`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
