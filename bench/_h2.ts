import { Validator } from "../src/server/validator.js";
import { egressPolicy } from "../test/support/large-policy.js";
import { performance } from "node:perf_hooks";
const v = new Validator();
const text = egressPolicy(15000);
await v.validate("version: 1\nsites: {a: {}}\n", "x", "a");
for (let k = 0; k < 2; k++) {
  const e0 = performance.eventLoopUtilization();
  let maxGap = 0; let last = performance.now();
  const timer = setInterval(() => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; }, 2);
  const t = performance.now();
  await v.validate(text, "x", "home");
  clearInterval(timer);
  const e = performance.eventLoopUtilization(e0);
  console.log("wall", (performance.now() - t).toFixed(0), "main busy ms", (e.active).toFixed(0), "util", e.utilization.toFixed(3), "max timer gap", maxGap.toFixed(0));
}
await v.close();
