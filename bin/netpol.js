#!/usr/bin/env node
// No node flags on the line above: any V8 flag (--expose-gc, --max-semi-space-size were here)
// makes Node reject the code cache of its own built-in modules and compile them again, some
// 15 ms of CPU at every start (bench/RESULTS.md, issue 19's start-up). `gc` is made on first
// use instead, for the one full collection after a policy is validated
// (src/apply/site/plan-site.ts); setting the flag then costs nothing that is still to load.
// CommonJS (bin/package.json): an ES module entry costs Node's ESM loader, some 5 ms of CPU.
const { readFileSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const path = require("node:path");
const vm = require("node:vm");
const zlib = require("node:zlib"); // zlib.crc32 is Node 20.15's: before it, the cache goes unused

globalThis.gc = () => {
  require("node:v8").setFlagsFromString("--expose-gc");
  globalThis.gc = vm.runInNewContext("gc");
  globalThis.gc();
};

// lib/main.cjs is compiled here rather than imported: Node 20 takes a V8 code cache only for a
// script compiled through node:vm, and the cache deploy/bundle.mjs writes spares compiling the
// code a command runs (bench/startup.ts). V8 checks only the compiled text's length, not its
// bytes, and keeps no checksum in release builds: the cache is used only if its header names
// this very bundle and this wrapper around it and its crc32 holds. V8 itself refuses it if Node
// or its flags changed. Refused or unusable, the bundle is compiled from its source, as it would
// be without a cache.
const file = path.join(__dirname, "../lib/main.cjs");
const bytes = readFileSync(file);
// The last line, `//# netpol-bundle <id> <encoding>`, names the code and how to read it.
const [id, encoding = "utf8"] = (
  bytes.subarray(-100).toString("latin1").split("netpol-bundle ")[1] ?? ""
)
  .trim()
  .split(" ");
const wrapper = "(function (exports, require, module, __filename, __dirname) {";
const setting = process.env.NETPOL_CODE_CACHE; // "off": compile from source; "report": say how

/** The cache's V8 data if its header names this bundle and wrapper and its checksum holds. */
function readCache() {
  let data;
  try {
    data = readFileSync(`${file}.v8cache`);
  } catch {
    return { state: "missing" };
  }
  const newline = data.indexOf(10);
  const header = data.subarray(0, Math.max(newline, 0)).toString("latin1");
  const payload = data.subarray(newline + 1);
  const whole = typeof zlib.crc32 === "function" && header === cacheHeader(payload);
  return id && whole ? { state: "read", payload } : { state: "unusable" };
}

/** `netpol-v8cache <bundle id> <crc32 of the V8 data> <wrapper>`. */
const cacheHeader = (payload) =>
  `netpol-v8cache ${id} ${zlib.crc32(payload).toString(16)} ${wrapper}`;

const cache = setting === "off" ? { state: "off" } : readCache();
const script = new vm.Script(`${wrapper}${bytes.toString(encoding)}\n})`, {
  filename: file,
  cachedData: cache.payload,
  importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
if (setting === "report") {
  const state = cache.payload ? (script.cachedDataRejected ? "rejected" : "accepted") : cache.state;
  process.stderr.write(`netpol: code cache ${state}\n`);
}
const out = process.env.NETPOL_CODE_CACHE_OUT; // deploy/bundle.mjs: write the cache at exit
if (out) {
  process.on("exit", () => {
    const payload = script.createCachedData();
    writeFileSync(out, Buffer.concat([Buffer.from(`${cacheHeader(payload)}\n`), payload]));
  });
}
const bundle = { exports: {} };
script.runInThisContext()(bundle.exports, createRequire(file), bundle, file, path.dirname(file));
