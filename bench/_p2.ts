import { compileSite } from "../src/compile/compile.js";
import { checkAllowedIps } from "../src/policy/allowed-ips.js";
import { readYaml } from "../src/policy/read-yaml.js";
import { resolvePolicy } from "../src/policy/resolve.js";
import { policySchema } from "../src/policy/schema.js";
import { egressPolicy, hubPolicy } from "../test/support/large-policy.js";

for (const [gen, site] of [
  [egressPolicy, "home"],
  [hubPolicy, "vps"],
  [egressPolicy, "home"],
  [hubPolicy, "vps"],
] as const) {
  const text = gen(10000);
  const t = [performance.now()];
  const r = readYaml(text, "x");
  t.push(performance.now());
  if (!r.ok) throw new Error();
  const d = policySchema.parse(r.data);
  t.push(performance.now());
  const res = resolvePolicy(d);
  t.push(performance.now());
  if (!res.ok) throw new Error(JSON.stringify(res.diagnostics.slice(0, 3)));
  checkAllowedIps(res.intent);
  t.push(performance.now());
  compileSite(res.intent, site);
  t.push(performance.now());
  console.log(
    site,
    t
      .slice(1)
      .map((x, i) => (x - (t[i] as number)).toFixed(0))
      .join(" "),
    (process.memoryUsage().rss / 1e6).toFixed(0),
  );
}
