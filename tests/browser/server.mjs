// A tiny static file server for the browser tests, with no dependencies.
//
// It serves a directory (the repository root: pkg/, target/guests/, the book's example
// page book/examples/browser/, tests/browser/) on 127.0.0.1 at an ephemeral port, and
// makes every page cross-origin isolated:
//
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
//   Cross-Origin-Resource-Policy: same-origin
//
// Without the first two, a page has no SharedArrayBuffer and a shared WebAssembly.Memory
// cannot be sent to a worker. Files are served with the content types that browsers insist
// on: `application/wasm` for WebAssembly.compileStreaming and `text/javascript` for module
// scripts and module workers.
//
// Use it from a script (`startServer(root)`) or on its own:
//
//   node tests/browser/server.mjs [ROOT]     # prints the URL, serves until Ctrl-C

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Content types by file extension; anything else is `application/octet-stream`. */
export const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.std': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
};

/** The headers that make a page cross-origin isolated (sent with every response). */
// ANCHOR: headers
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
// ANCHOR_END: headers

function send(res, status, text) {
  res.writeHead(status, {
    ...ISOLATION_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.end(`${status} ${text}\n`);
}

/**
 * The absolute path that `urlPath` names below `root`, or null if it leaves `root`
 * (`..`, an encoded slash trick) or cannot be decoded.
 */
export function resolvePath(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const full = resolve(root, `.${decoded.startsWith('/') ? '' : '/'}${decoded}`);
  if (full !== root && !full.startsWith(root + sep)) return null;
  return full;
}

/**
 * Starts serving `root` on 127.0.0.1 at an ephemeral port. Resolves to
 * `{ url, port, close() }`, `url` ending with `/`. `log(line)` receives one line per
 * request that fails (a 404 is usually a missing build step).
 */
export async function startServer(root, { log = () => {} } = {}) {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'only GET and HEAD are served');
      return;
    }
    const url = new URL(req.url, 'http://127.0.0.1');
    let path = resolvePath(base, url.pathname);
    if (path === null) {
      log(`403 ${url.pathname} (outside the served directory)`);
      send(res, 403, 'outside the served directory');
      return;
    }
    let info;
    try {
      info = await stat(path);
      if (info.isDirectory()) {
        path = join(path, 'index.html');
        info = await stat(path);
      }
    } catch {
      log(`404 ${url.pathname}`);
      send(res, 404, `not found: ${url.pathname}`);
      return;
    }
    if (!info.isFile()) {
      send(res, 404, `not a file: ${url.pathname}`);
      return;
    }
    res.writeHead(200, {
      ...ISOLATION_HEADERS,
      'Content-Type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': info.size,
      // The tests rebuild pkg/ and the guests between runs: never serve a stale copy.
      'Cache-Control': 'no-store',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(path);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  });
  // Keep-alive sockets would hold `close()` open until they time out.
  server.keepAliveTimeout = 1000;
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', fail);
      ok();
    });
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(fileURLToPath(import.meta.url), '..', '..', '..'));
  const { url } = await startServer(root, { log: (l) => console.error(l) });
  console.log(`serving ${root} at ${url} (Ctrl-C stops)`);
}
