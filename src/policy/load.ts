import { createHash } from "node:crypto";
import { type Document, isMap, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { checkAllowedIps } from "../compile/checks.js";
import { checkMarkRoom } from "../compile/egress-groups.js";
import { NetpolError } from "../errors.js";
import type { Diagnostic, LocatedDiagnostic } from "./diagnostic.js";
import type { Intent } from "./intent.js";
import { resolvePolicy } from "./resolve.js";
import { policySchema } from "./schema.js";

export interface LoadedPolicy {
  readonly intent: Intent;
  /** sha256 of the policy text, to say which policy is in force. */
  readonly hash: string;
  /** The policy as written, kept so the site can later say which policy is in force. */
  readonly text: string;
}

/** Places each diagnostic at the deepest node of its path that the document has. */
function locate(doc: Document, lines: LineCounter, file: string, d: Diagnostic): LocatedDiagnostic {
  for (let depth = d.path.length; depth >= 0; depth--) {
    const node = doc.getIn(d.path.slice(0, depth), true) as
      | { range?: [number, number, number] }
      | undefined;
    const offset = node?.range?.[0] ?? (depth === 0 ? doc.contents?.range?.[0] : undefined);
    if (offset !== undefined) {
      const pos = lines.linePos(offset);
      return { ...d, file, line: pos.line, col: pos.col };
    }
  }
  return { ...d, file, line: 1, col: 1 };
}

function zodDiagnostics(error: z.ZodError): Diagnostic[] {
  return error.issues.flatMap((issue): Diagnostic[] => {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: [...path, key],
        message: `unknown field ${JSON.stringify(key)}; check its spelling against the README's policy reference`,
      }));
    }
    if (issue.code === "invalid_key") {
      const why = issue.issues.map((i) => i.message).join("; ");
      return [
        { path, message: `${JSON.stringify(String(path.at(-1)))} is not a valid name: ${why}` },
      ];
    }
    if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) {
      return [{ path, message: `missing: ${issue.message.replace(/^Invalid input: /, "")}` }];
    }
    return [{ path, message: issue.message.replace(/^Invalid input: /, "") }];
  });
}

/** Duplicate keys are legal in some YAML readers and silently drop data in others: refuse them. */
function yamlErrors(doc: Document, lines: LineCounter, file: string): LocatedDiagnostic[] {
  return doc.errors.map((e) => {
    const pos = lines.linePos(e.pos[0]);
    const message = e.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "";
    return { file, line: pos.line, col: pos.col, path: [], message: `YAML: ${message}` };
  });
}

/**
 * Policy text → Intent. Every user mistake becomes a NetpolError carrying all located
 * diagnostics; nothing here touches the system.
 */
export function parsePolicy(text: string, file: string): LoadedPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const syntax = yamlErrors(doc, lines, file);
  if (syntax.length > 0) throw invalid(file, syntax);
  if (!isMap(doc.contents)) {
    throw invalid(file, [
      {
        file,
        line: 1,
        col: 1,
        path: [],
        message: "a policy is a mapping with version, sites, tunnels and services",
      },
    ]);
  }
  const parsed = policySchema.safeParse(doc.toJS({ maxAliasCount: 100 }));
  const place = (d: Diagnostic) => locate(doc, lines, file, d);
  if (!parsed.success) throw invalid(file, zodDiagnostics(parsed.error).map(place));
  const resolved = resolvePolicy(parsed.data);
  if (!resolved.ok) throw invalid(file, resolved.diagnostics.map(place));
  const clashes = [...checkAllowedIps(resolved.intent), ...checkMarkRoom(resolved.intent)];
  if (clashes.length > 0) throw invalid(file, clashes.map(place));
  return { intent: resolved.intent, hash: createHash("sha256").update(text).digest("hex"), text };
}

function invalid(file: string, diagnostics: LocatedDiagnostic[]): NetpolError {
  const sorted = [...diagnostics].sort((a, b) => a.line - b.line || a.col - b.col);
  const count = sorted.length === 1 ? "1 problem" : `${sorted.length} problems`;
  return new NetpolError("NETPOL_E_POLICY_INVALID", `${file}: ${count}`, sorted);
}
