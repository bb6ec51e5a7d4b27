import { serialize, deserialize } from "node:v8";
import { parsePolicy } from "../src/policy/load.js";
import { compileSite } from "../src/compile/compile.js";
import { egressPolicy } from "../test/support/large-policy.js";
const text = egressPolicy(15000);
const d = compileSite(parsePolicy(text, "x").intent, "home");
for (let k = 0; k < 3; k++) {
let t = performance.now();
const b = serialize(d);
const t1 = performance.now() - t; t = performance.now();
deserialize(b);
const t2 = performance.now() - t; t = performance.now();
serialize(text);
console.log("bytes", b.length, "ser", t1.toFixed(0), "deser", t2.toFixed(0), "text ser", (performance.now() - t).toFixed(1));
}
console.log(Object.entries(d).map(([k, v]) => `${k}:${Array.isArray(v) ? v.length : typeof v}`).join(" "));
