import { openTestPage } from './browser.mjs';
const { page, close } = await openTestPage({});
const browser = page.context().browser?.() ;
try {
  const client = await page.context().newCDPSession(page);
  await client.send('Tracing.start', { categories: 'devtools.timeline,v8,disabled-by-default-devtools.timeline', transferMode: 'ReturnAsStream' });
  const r = await page.evaluate(([u, f, n]) => globalThis.wgTest.smoothness(u, f, {}, n), ['/target/guests/stress.wasm', 'alloc_free_stress', 5]);
  console.log(JSON.stringify({ gap: r.longestGapMs, long: r.longTasks }));
  const done = new Promise((res) => client.once('Tracing.tracingComplete', res));
  await client.send('Tracing.end');
  const { stream } = await done;
  let data = '';
  for (;;) { const c = await client.send('IO.read', { handle: stream }); data += c.data; if (c.eof) break; }
  const { writeFile } = await import('node:fs/promises');
  await writeFile('/work/notes/exp/gap_trace.json', data);
} finally { await close(); }
