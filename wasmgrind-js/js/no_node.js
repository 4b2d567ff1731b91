// The package import `#node-shim` for browsers (and any platform that is not Node.js):
// none of node_shim.js, so that a bundle for browsers contains no `node:` module. Browsers
// never load `#node-shim`; if a Node.js process does get this file, `nodeShim()` in shim.js
// says why.

export const available = false;
