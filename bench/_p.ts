import { compileSite } from "../src/compile/compile.js";
import { parsePolicy } from "../src/policy/load.js";
import { egressPolicy, hubPolicy } from "../test/support/large-policy.js";

const which = process.argv[2];
const text = which === "hub" ? hubPolicy(10000) : egressPolicy(10000);
const p = parsePolicy(text, "x", { maxBytes: 1e9 });
compileSite(p.intent, which === "hub" ? "vps" : "home");
