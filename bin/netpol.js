#!/usr/bin/env node
// No node flags on the line above: any V8 flag (--expose-gc, --max-semi-space-size were here)
// makes Node reject the code cache of its own built-in modules and compile them again, some
// 15 ms of CPU at every start (bench/RESULTS.md, issue 19's start-up). `gc` is made on first
// use instead, for the one full collection after a policy is validated
// (src/apply/site/plan-site.ts); setting the flag then costs nothing that is still to load.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

globalThis.gc = () => {
  setFlagsFromString("--expose-gc");
  globalThis.gc = runInNewContext("gc");
  globalThis.gc();
};
await import("../lib/main.js");
