// What the detectors reported compared with what guests/manifest.json expects. Shared by
// the Node tests (tests/node/helpers.mjs) and the browser tests (tests/browser/run.mjs);
// the findings themselves come from wasmgrind_core's detectors, through the runtime.

/** Every function name of a report frame: the physical one and the ones inlined there. */
function frameNames(frame) {
  if (!frame) return [];
  return [frame.function, ...(frame.inlined || []).map((f) => f.function)].filter(Boolean);
}

const sameSet = (a, b) => {
  const x = [...new Set(a)].sort((p, q) => p - q);
  const y = [...new Set(b)].sort((p, q) => p - q);
  return JSON.stringify(x) === JSON.stringify(y);
};

/**
 * The findings of a report (the JSON that the runtime returns as `findings`) as
 * `{ kind, threads, frames, text }`.
 */
export function reportedFindings(report) {
  const where = (f) => (f ? `${f.function} ${f.file || ''}:${f.line || ''}` : '<unknown>');
  return [
    ...report.races.map((r) => ({
      kind: 'data_race',
      threads: [r.current.thread, r.previous.thread],
      frames: [r.current.frame, r.previous.frame],
      text: `data race: T${r.current.thread} ${r.current.kind} in ${where(r.current.frame)}; T${r.previous.thread} ${r.previous.kind} in ${where(r.previous.frame)}`,
    })),
    ...report.potential_deadlocks.map((d) => ({
      kind: 'potential_deadlock',
      threads: d.edges.map((e) => e.thread),
      frames: d.edges.flatMap((e) => [e.held_at, e.next_at]),
      text: `potential deadlock: ${d.edges.map((e) => `T${e.thread} ${where(e.held_at)} -> ${where(e.next_at)}`).join('; ')}`,
    })),
    ...(report.deadlock
      ? [
          {
            kind: 'deadlock',
            threads: report.deadlock.threads.map((t) => t.thread),
            frames: report.deadlock.threads.map((t) => t.requested_at),
            text: `deadlock: ${report.deadlock.threads.map((t) => `T${t.thread} in ${where(t.requested_at)}`).join('; ')}`,
          },
        ]
      : []),
  ];
}

/**
 * What is wrong with `report` for the manifest scenario `s` (see guests/README.md); empty
 * when nothing is. Checks `data_race` and `potential_deadlock`, and every entry of
 * `findings` both ways: each reported finding matches an entry (kind, threads, and every
 * frame in one of its functions) and each entry is matched by a reported finding.
 */
export function findingProblems(report, s) {
  if (!report) return ['the run returned no findings'];
  const actual = reportedFindings(report);
  const matches = (a, e) =>
    a.kind === e.kind &&
    (e.threads === null || sameSet(a.threads, e.threads)) &&
    a.frames.every((f) => frameNames(f).some((n) => e.functions.some((fn) => n.includes(fn))));
  const listing = actual.map((a) => `  ${a.text}`).join('\n') || '  (nothing)';
  const problems = [];
  for (const a of actual) {
    if (!s.findings.some((e) => matches(a, e))) problems.push(`a finding the manifest does not expect: ${a.text}`);
  }
  for (const e of s.findings) {
    if (!actual.some((a) => matches(a, e))) problems.push(`expected ${JSON.stringify(e)}, not reported`);
  }
  if (report.counts.races > 0 !== s.data_race) problems.push(`data_race is ${s.data_race} in the manifest`);
  if (report.counts.potential_deadlocks + report.counts.deadlocks > 0 !== s.potential_deadlock) {
    problems.push(`potential_deadlock is ${s.potential_deadlock} in the manifest`);
  }
  if (problems.length > 0) problems.push(`reported:\n${listing}`);
  return problems;
}

/**
 * What is wrong with the outcome `r` of wasi scenario `s` of the manifest's `wasi_guests`
 * (run as `_start` with the scenario's name as argv[1]); empty when it is what the
 * manifest says. `r` is `{ ok: true, exitCode, stdout, stderr, forks, forkJoinConsistency,
 * findings }` for a program that ended, or `{ ok: false, error }` with the error's `kind`,
 * `message`, `stdout`, `stderr` and `findings` (the shape of the browser driver's
 * `runWasi`; the Node tests shape their results so).
 */
export function wasiOutcomeProblems(s, r) {
  const wrong = [];
  const err = r.error ?? {};
  const out = r.ok ? r : { stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  if (s.stdout !== null && out.stdout !== s.stdout) {
    wrong.push(`stdout ${JSON.stringify(out.stdout)}, expected ${JSON.stringify(s.stdout)}`);
  }
  if (s.stderr_contains !== null && !String(out.stderr).includes(s.stderr_contains)) {
    wrong.push(`stderr lacks ${JSON.stringify(s.stderr_contains)}: ${JSON.stringify(out.stderr)}`);
  }
  switch (s.outcome) {
    case 'ok':
    case 'exit':
      if (!r.ok) return [...wrong, `expected the program to end, got ${err.kind ?? err.name}: ${err.message}`];
      if (r.exitCode !== s.exit_code) wrong.push(`exit code ${r.exitCode}, expected ${s.exit_code}`);
      if (r.forkJoinConsistency) wrong.push(`fork/join consistency: ${r.forkJoinConsistency}`);
      if (s.forks !== null && r.forks !== s.forks) wrong.push(`${r.forks} threads spawned, expected ${s.forks}`);
      break;
    case 'trap':
    case 'panic':
      if (r.ok) return [...wrong, `expected a ${s.outcome}, the program ended with ${r.exitCode}`];
      if (err.kind !== 'Trap') wrong.push(`expected a Trap (a panic aborts on this target), got ${err.kind}: ${err.message}`);
      break;
    case 'deadlock':
      if (r.ok) return [...wrong, 'expected a deadlock, the program ended'];
      if (err.kind !== 'DeadlockError') wrong.push(`expected a DeadlockError, got ${err.kind}: ${err.message}`);
      break;
    default:
      return [`unknown outcome ${s.outcome} in the manifest`];
  }
  const findings = r.ok ? r.findings : err.findings;
  if (findings) wrong.push(...findingProblems(findings, s));
  else wrong.push('the run has no findings to compare');
  return wrong;
}
