import { parseDocument } from "yaml";
import { parsePolicy } from "../policy/load.js";
import { type ApplyResult, applySite } from "./apply.js";
import { loadRecord } from "./state/record.js";
import type { Target } from "./target.js";

/**
 * The policy in force with its site emptied: same settings (so the same route protocol and
 * table ranges say what is netpol's), no networks, egress, tunnels or services.
 */
function emptied(text: string, site: string): string {
  const doc = parseDocument(text);
  doc.setIn(["sites"], doc.createNode({ [site]: {} }));
  doc.delete("tunnels");
  doc.delete("services");
  return doc.toString();
}

/**
 * Remove everything netpol owns in a namespace by applying an empty policy through the normal
 * apply (plan, verify, rollback), which then forgets the record and the compiled state.
 * Undefined when nothing was applied.
 */
export async function takeDown(
  target: Target,
  appliedBy: string,
): Promise<ApplyResult | undefined> {
  const record = await loadRecord(target.files);
  if (!record) return undefined;
  const empty = emptied(record.policyText, record.site);
  const loaded = parsePolicy(empty, "(empty policy)");
  return applySite(target, { ...loaded, keyDir: "", site: record.site }, appliedBy, {
    forget: true,
  });
}
