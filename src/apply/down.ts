import { rm } from "node:fs/promises";
import { parseDocument } from "yaml";
import { parsePolicy } from "../policy/load.js";
import { type ApplyResult, applySite, type Target } from "./apply.js";
import { loadPolicyText, loadRecord, policyPath, writeRecordText } from "./record.js";

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
 * apply (plan, verify, rollback), then forget the record. Undefined when nothing was applied.
 */
export async function takeDown(
  target: Target,
  appliedBy: string,
): Promise<ApplyResult | undefined> {
  const [record, text] = await Promise.all([
    loadRecord(target.stateDir, target.scope),
    loadPolicyText(target.stateDir, target.scope),
  ]);
  if (!record || text === undefined) return undefined;
  const empty = emptied(text, record.site);
  const loaded = parsePolicy(empty, "(empty policy)");
  const result = await applySite(target, { ...loaded, keyDir: "", site: record.site }, appliedBy);
  await writeRecordText(target.stateDir, target.scope, undefined);
  await rm(policyPath(target.stateDir, target.scope), { force: true });
  return result;
}
