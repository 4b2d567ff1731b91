// The webpack configuration of the bundler test's app (the same main.js as with Vite). The
// book's chapter "Using a bundler" shows it to users (the part between the ANCHOR comments).
// The test builds with webpack's API and writes the page itself (webpack.html); an app
// would use html-webpack-plugin or its own page, and `npx webpack` with webpack-cli.

// ANCHOR: config
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './main.js',
  output: { path: fileURLToPath(new URL('./dist', import.meta.url)), clean: true },
  // Wasmgrind's runtime module (wasmgrind_js_bg.wasm) is about 2 MiB, and webpack warns
  // about every asset over 244 KiB: leave WebAssembly out of that hint.
  performance: { assetFilter: (file) => !file.endsWith('.wasm') },
};
// ANCHOR_END: config
