import { open } from "node:fs/promises";

/** One error Caddy logged while getting a name's certificate. */
export interface IssuanceError {
  /** When Caddy logged it (ISO 8601). */
  readonly at: string;
  /** Caddy's words: the CA's problem with the challenge where it said one, else Caddy's error. */
  readonly message: string;
  /** The ACME problem type, e.g. `urn:ietf:params:acme:error:connection`, where the CA said one. */
  readonly problem?: string;
}

interface Entry {
  readonly level?: unknown;
  readonly ts?: unknown;
  readonly msg?: unknown;
  readonly identifier?: unknown;
  readonly error?: unknown;
  readonly problem_type?: unknown;
}

/**
 * A config load cancels the issuance in flight, which Caddy logs as an error and then starts
 * again under the new config: not the CA's or the network's doing.
 */
const cancelled = (e: Entry) =>
  typeof e.error === "string" && /context canceled( \(ca=[^)]*\))?$/.test(e.error);

const SUCCESS = new Set(["certificate obtained successfully", "certificate renewed successfully"]);

/**
 * The last issuance error of each name from Caddy's certificate log (JSON lines), unless a
 * certificate was obtained or renewed after it. Of the errors one failed attempt logs, the
 * CA's verdict on the challenge (it carries a problem type: what went wrong, and where) is
 * kept over the later, vaguer "could not get certificate". Lines that are not Caddy's JSON
 * are passed over: a log cut by its rotation starts mid-line. So are the errors of an issuance
 * a config load cancelled.
 */
export function lastIssuanceErrors(text: string): Map<string, IssuanceError> {
  const names = new Map<string, { success: number; error?: Entry; problem?: Entry }>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let e: Entry;
    try {
      e = JSON.parse(line) as Entry;
    } catch {
      continue;
    }
    if (typeof e.identifier !== "string" || typeof e.ts !== "number") continue;
    const name = e.identifier.toLowerCase();
    const seen = names.get(name) ?? { success: 0 };
    names.set(name, seen);
    if (typeof e.msg === "string" && SUCCESS.has(e.msg)) seen.success = e.ts;
    else if (e.level === "error" && !cancelled(e)) {
      seen.error = e;
      if (typeof e.problem_type === "string") seen.problem = e;
    }
  }
  const out = new Map<string, IssuanceError>();
  for (const [name, { success, error, problem }] of names) {
    if (!error || (error.ts as number) <= success) continue;
    const told = problem && (problem.ts as number) > success ? problem : error;
    out.set(name, {
      at: new Date((told.ts as number) * 1000).toISOString(),
      message: typeof told.error === "string" ? told.error : String(told.msg),
      ...(typeof told.problem_type === "string" ? { problem: told.problem_type } : {}),
    });
  }
  return out;
}

/** Caddy rolls the log at 1 MiB (render/caddy.ts): reading at most this much reads all of it. */
const TAIL_BYTES = 2 * 1024 * 1024;

/**
 * The log's last TAIL_BYTES as text; undefined when Caddy has written none yet. The file is on
 * the site's own filesystem, which every namespace shares: no process is needed to read it.
 */
export async function readAcmeLog(file: string): Promise<string | undefined> {
  const handle = await open(file, "r").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString("utf8");
  } finally {
    await handle.close();
  }
}
