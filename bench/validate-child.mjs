// One size of bench/validate.ts, in a plain Node process on the compiled sources (dist/), so
// its peak RSS is netpol's and not a TypeScript loader's. Prints one JSON line.
//
//   node bench/validate-child.mjs POLICY_FILE RUNS SITE...
import { readFileSync } from "node:fs";
import { compileSite } from "../dist/compile/compile.js";
import { parsePolicy } from "../dist/policy/load.js";

const [file, runsText, ...sites] = process.argv.slice(2);
const text = readFileSync(file, "utf8");
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const runs = [];
for (let i = 0; i < Number(runsText); i++) {
  const [w0, c0] = [performance.now(), cpuMs()];
  const { intent } = parsePolicy(text, file, { maxBytes: Number.MAX_SAFE_INTEGER });
  const [w1, c1] = [performance.now(), cpuMs()];
  for (const site of sites) compileSite(intent, site);
  runs.push({
    validateMs: w1 - w0,
    validateCpuMs: c1 - c0,
    compileMs: performance.now() - w1,
    compileCpuMs: cpuMs() - c1,
  });
}
process.stdout.write(JSON.stringify({ runs, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
