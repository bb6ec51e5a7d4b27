import { Validator } from "../src/server/validator.js";
import { planSite } from "../src/apply/apply.js";
import { planJson } from "../src/plan/format.js";
import { egressPolicy } from "../test/support/large-policy.js";
import { FakeKernel } from "../test/support/fake-kernel/kernel.js";
import { monitorEventLoopDelay } from "node:perf_hooks";
const h = monitorEventLoopDelay({ resolution: 5 }); h.enable();
const v = new Validator();
const text = egressPolicy(15000);
for (let k = 0; k < 2; k++) {
let t = performance.now();
const val = await v.validate(text, "x", "home");
console.log("validate (wall incl. worker)", (performance.now() - t).toFixed(0), "loop max", (h.max / 1e6).toFixed(0)); h.reset();
const kernel = new FakeKernel();
t = performance.now();
const planned = await planSite({ runner: kernel.runner(), stateDir: "/tmp/nonexist-policy-state", scope: "x" }, { ...val, keyDir: "/tmp", site: "home" });
console.log("planSite", (performance.now() - t).toFixed(0), "loop max", (h.max / 1e6).toFixed(0)); h.reset();
t = performance.now();
const j = planJson(planned.plan);
const s = JSON.stringify({ dryRun: true, plan: j });
console.log("planJson+stringify", (performance.now() - t).toFixed(0), s.length, "changes", planned.plan.changes.length);
}
await v.close();
