import type { z } from "zod";
import { checkMarkRoom } from "../compile/egress-groups.js";
import { NetpolError } from "../errors.js";
import { quoted } from "../net/quote.js";
import { checkAllowedIps, checkRoutedOverOwn } from "./allowed-ips.js";
import type { Diagnostic, LocatedDiagnostic, Path } from "./diagnostic.js";
import { policyHash } from "./hash.js";
import type { Intent } from "./intent.js";
import { checkListenPorts } from "./listen-ports.js";
import { readYaml } from "./read-yaml.js";
import { resolvePolicy } from "./resolve.js";
import { type PolicyDocument, policySchema } from "./schema.js";

export interface LoadedPolicy {
  readonly intent: Intent;
  /** sha256 of the policy text, to say which policy is in force. */
  readonly hash: string;
  /** The policy as written, kept so the site can later say which policy is in force. */
  readonly text: string;
}

/**
 * The largest policy the CLI and the server read: room for some 15,000 networks with an
 * egress each, while a hostile file cannot make a reader hold gigabytes.
 */
export const MAX_POLICY_BYTES = 2 * 1024 * 1024;
/** A policy with more problems than this lists the first ones: the rest usually follow from them. */
const MAX_REPORTED = 50;

function zodDiagnostics(error: z.ZodError): Diagnostic[] {
  return error.issues.flatMap((issue): Diagnostic[] => {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: [...path, key],
        message: `unknown field ${quoted(key)}; check its spelling against the policy reference (docs/policy.md)`,
      }));
    }
    if (issue.code === "invalid_key") {
      const why = issue.issues.map((i) => i.message).join("; ");
      return [{ path, message: `${quoted(String(path.at(-1)))} is not a valid name: ${why}` }];
    }
    if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) {
      return [{ path, message: `missing: ${issue.message.replace(/^Invalid input: /, "")}` }];
    }
    return [{ path, message: issue.message.replace(/^Invalid input: /, "") }];
  });
}

function isMapping(data: unknown): data is Record<string, unknown> {
  return typeof data === "object" && data !== null && !Array.isArray(data);
}

/**
 * Where a `__proto__` key sits, if anywhere: the YAML readers keep it as an own key, but
 * copying the data (as the schema does) turns it into a prototype and drops it unseen.
 */
function protoKeyPath(data: unknown): Path | undefined {
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) {
      const found = protoKeyPath(data[i]);
      if (found) return [i, ...found];
    }
  } else if (isMapping(data)) {
    for (const key in data) {
      if (key === "__proto__") return [key];
      const found = protoKeyPath(data[key]);
      if (found) return [key, ...found];
    }
  }
  return undefined;
}

/**
 * A step of parsePolicy, reported to `lap` as it ends, so a benchmark can time each share:
 * `yaml` is readYaml, `schema` the shape checks and zod after it.
 */
export type PolicyStep = "yaml" | "schema";

/**
 * Policy text → Intent. Every user mistake becomes a NetpolError carrying all located
 * diagnostics; nothing here touches the system.
 */
export function parsePolicy(
  text: string,
  file: string,
  {
    maxBytes = MAX_POLICY_BYTES,
    lap,
    keep,
  }: {
    maxBytes?: number;
    lap?: (step: PolicyStep) => void;
    /** Given the schema's output: the incremental reader keeps it to patch the next text's. */
    keep?: (data: PolicyDocument) => void;
  } = {},
): LoadedPolicy {
  if (Buffer.byteLength(text, "utf8") > maxBytes) {
    const message = `the policy is larger than ${maxBytes} bytes, the most netpol reads`;
    throw new NetpolError("NETPOL_E_POLICY_INVALID", `${file}: ${message}`, [
      { file, line: 1, col: 1, path: [], message },
    ]);
  }
  const { data, place } = readShape(text, file, lap);
  keep?.(data);
  const checked = resolveChecked(data);
  if (!checked.ok) throw invalid(file, checked.diagnostics.map(place));
  return { intent: checked.intent, hash: policyHash(text), text };
}

/**
 * The schema's output → the intent, or the problems of its references (resolve) or, those
 * clear, its clashes (overlaps, ports, marks), not yet placed in the text.
 */
export function resolveChecked(
  data: PolicyDocument,
): { ok: true; intent: Intent } | { ok: false; diagnostics: Diagnostic[] } {
  const resolved = resolvePolicy(data);
  if (!resolved.ok) return resolved;
  const clashes = [
    ...checkAllowedIps(resolved.intent),
    ...checkRoutedOverOwn(resolved.intent),
    ...checkMarkRoom(resolved.intent),
    ...checkListenPorts(resolved.intent),
  ];
  return clashes.length > 0 ? { ok: false, diagnostics: clashes } : resolved;
}

/**
 * Policy text → the schema's output. A function of its own so that the YAML reader's tree,
 * as large as the schema's copy of it, is garbage once this returns and is not still held
 * while the policy resolves (at 10,000 objects that is the difference in peak memory).
 */
function readShape(
  text: string,
  file: string,
  lap?: (step: PolicyStep) => void,
): { data: PolicyDocument; place: (d: Diagnostic) => LocatedDiagnostic } {
  const read = readYaml(text, file);
  lap?.("yaml");
  if (!read.ok) throw invalid(file, read.problems);
  const { place } = read;
  if (!isMapping(read.data)) {
    const message = "a policy is a mapping with version, sites, tunnels and services";
    throw invalid(file, [{ file, line: 1, col: 1, path: [], message }]);
  }
  // A key reads `__proto__` only if the text spells it, or escapes it in a double-quoted key.
  const mayHoldProto = text.includes("__proto__") || text.includes("\\");
  const proto = mayHoldProto ? protoKeyPath(read.data) : undefined;
  if (proto) {
    const message = "`__proto__` is not a name netpol takes; rename it";
    throw invalid(file, [place({ path: proto, message })]);
  }
  const parsed = policySchema.safeParse(read.data);
  lap?.("schema");
  if (!parsed.success) throw invalid(file, zodDiagnostics(parsed.error).map(place));
  return { data: parsed.data, place };
}

function invalid(file: string, diagnostics: LocatedDiagnostic[]): NetpolError {
  const sorted = [...diagnostics].sort((a, b) => a.line - b.line || a.col - b.col);
  const count = sorted.length === 1 ? "1 problem" : `${sorted.length} problems`;
  const shown = sorted.slice(0, MAX_REPORTED);
  const more = sorted.length > shown.length ? `; the first ${shown.length} are listed` : "";
  return new NetpolError("NETPOL_E_POLICY_INVALID", `${file}: ${count}${more}`, shown);
}
