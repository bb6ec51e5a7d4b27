import type { StateFiles } from "../state/files.js";
import { type ApplyRecord, loadRecord } from "../state/record.js";
import type { PolicyInput } from "./input.js";
import { fromText, type Validate } from "./text.js";

/**
 * The policy in force, to plan or apply again: cached or validated (fromText); none applied:
 * undefined. Apart from in-force.ts, which parses the record's policy whole: a resident holding
 * the policy in force from the compiled cache loads no parser (bench/agent-memory.ts).
 */
export async function fromInForce(
  files: StateFiles,
  keyDir: string,
  validate?: Validate,
): Promise<{ readonly record: ApplyRecord; readonly policy: PolicyInput } | undefined> {
  const record = await loadRecord(files);
  if (!record) return undefined;
  const text = { text: record.policyText, name: "policy in force", site: record.site, keyDir };
  return { record, policy: await fromText(files, text, validate) };
}
