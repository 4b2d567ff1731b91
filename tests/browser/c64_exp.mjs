import { openTestPage } from './browser.mjs';
const { page, close } = await openTestPage({});
try {
  const client = await page.context().newCDPSession(page);
  // warm-up
  await page.evaluate(([u, f, o]) => globalThis.wgTest.run(u, f, o, 600000), ['/target/guests/basics.wasm', 'spawn_join', {}]);
  await client.send('Tracing.start', { categories: 'devtools.timeline,v8,v8.wasm,disabled-by-default-devtools.timeline,loading,netlog', transferMode: 'ReturnAsStream' });
  const r = await page.evaluate(([u, f, o]) => globalThis.wgTest.run(u, f, o, 600000), ['/target/guests/stress.wasm', 'concurrent_64', {}]);
  console.log(JSON.stringify({ ok: r.ok, ms: r.ms, fn: r.timings?.functionMs, prep: r.timings?.prepareMs }));
  const done = new Promise((res) => client.once('Tracing.tracingComplete', res));
  await client.send('Tracing.end');
  const { stream } = await done;
  let data = '';
  for (;;) { const c = await client.send('IO.read', { handle: stream }); data += c.data; if (c.eof) break; }
  const { writeFile } = await import('node:fs/promises');
  await writeFile('/work/notes/exp/c64_trace.json', data);
} finally { await close(); }
