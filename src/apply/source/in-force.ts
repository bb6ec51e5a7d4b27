import { compileSite } from "../../compile/compile.js";
import type { SiteState } from "../../compile/desired.js";
import { compileProxy } from "../../compile/proxy.js";
import { type LoadedPolicy, parsePolicy } from "../../policy/load.js";
import { yamlPackage } from "../../policy/yaml-package.js";
import { corrupt, type StateFiles } from "../state/files.js";
import { type ApplyRecord, loadRecord, recordPath } from "../state/record.js";
import type { PolicyInput } from "./input.js";

export { fromInForce } from "./from-in-force.js";

/**
 * The policy in force: the text the last apply put there, kept in the record. `watch` follows
 * it, `serve` plans it, `status` reports on it, `down` empties it. To plan or apply it again
 * from the compiled cache without parsing it: from-in-force.ts.
 */

/**
 * The policy in force parsed whole, for what needs more than its compiled state (status names
 * tunnel peers and services); a record whose policy no longer parses is corrupt.
 */
export async function loadInForce(
  files: StateFiles,
): Promise<{ record: ApplyRecord; policy: LoadedPolicy } | undefined> {
  const record = await loadRecord(files);
  if (!record) return undefined;
  return { record, policy: parseInForce(files, record) };
}

/** The record's policy parsed whole; one that no longer parses makes the record corrupt. */
export function parseInForce(files: StateFiles, record: ApplyRecord): LoadedPolicy {
  try {
    return parsePolicy(record.policyText, "policy in force");
  } catch {
    throw corrupt(files, recordPath(files), "ownership record", "its policy no longer parses");
  }
}

/**
 * The state the policy in force compiles to, for a plan to name the nftables rules a change
 * touches (the kernel prints rules otherwise than netpol writes them). Undefined when none is
 * known or it no longer compiles: the plan then says only that the rules differ.
 */
export function stateInForce(record: ApplyRecord | undefined): SiteState | undefined {
  if (!record) return undefined;
  try {
    return compileSite(parsePolicy(record.policyText, "policy in force").intent, record.site);
  } catch {
    return undefined;
  }
}

/**
 * The policy in force with its site emptied, for `netpol down`: same settings (so the same
 * route protocol and table ranges say what is netpol's), no networks, egress, tunnels or
 * services. A site that had a proxy keeps its `proxy` block (Caddy's admin address, the
 * default one where the policy named none): with no route left to publish, the apply then
 * takes netpol's routes (`@id: netpol-…`) out of Caddy. Undefined when nothing was applied.
 */
export async function emptiedInForce(files: StateFiles): Promise<PolicyInput | undefined> {
  const record = await loadRecord(files);
  if (!record) return undefined;
  const { intent } = parseInForce(files, record);
  const site = intent.sites.find((s) => s.name === record.site);
  const proxied = site !== undefined && compileProxy(intent, site) !== undefined;
  const doc = yamlPackage().parseDocument(record.policyText);
  const proxy = doc.getIn(["sites", record.site, "proxy"], true) ?? doc.createNode({});
  doc.setIn(["sites"], doc.createNode({ [record.site]: {} }));
  if (proxied) doc.setIn(["sites", record.site, "proxy"], proxy);
  doc.delete("tunnels");
  doc.delete("services");
  return { ...parsePolicy(doc.toString(), "(empty policy)"), keyDir: "", site: record.site };
}
