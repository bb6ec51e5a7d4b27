import { open } from "node:fs/promises";
import path from "node:path";
import { NetpolError } from "../../errors.js";
import { type LoadedPolicy, MAX_POLICY_BYTES, parsePolicy } from "../../policy/load.js";
import type { StateFiles } from "../state/files.js";
import type { PolicyInput } from "./input.js";
import { fromText } from "./text.js";

export interface PolicyFile extends LoadedPolicy {
  readonly file: string;
  /** Key file names in the policy are relative to this directory (the policy's own by default). */
  readonly keyDir: string;
}

/**
 * The file's text, read no further than one byte past the policy size limit: a huge file (or
 * an endless pipe) is refused by parsePolicy without being held in memory first.
 */
async function readBounded(file: string, maxBytes: number): Promise<string> {
  const handle = await open(file, "r");
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, size, buf.length - size, null);
      size += bytesRead;
      if (bytesRead === 0 || size === buf.length) break;
    }
    return buf.toString("utf8", 0, size);
  } finally {
    await handle.close();
  }
}

/** The policy file's text; `maxBytes` is larger only for `publish` (a whole fleet's policy). */
export async function readPolicyText(file: string, maxBytes = MAX_POLICY_BYTES): Promise<string> {
  return readBounded(file, maxBytes).catch((err: NodeJS.ErrnoException) => {
    throw new NetpolError(
      "NETPOL_E_POLICY_UNREADABLE",
      `cannot read policy ${file}: ${err.code ?? err.message}`,
    );
  });
}

/** Key file names in a policy are relative to its own directory unless --key-dir says otherwise. */
export const keyDirOf = (file: string, keyDir?: string) =>
  keyDir ?? path.dirname(path.resolve(file));

export async function readPolicyFile(file: string, keyDir?: string): Promise<PolicyFile> {
  const text = await readPolicyText(file);
  return { ...parsePolicy(text, file), file, keyDir: keyDirOf(file, keyDir) };
}

/** The policy in `file`, to plan or apply at `site`: cached or validated in full (fromText). */
export async function fromFile(
  files: StateFiles,
  file: string,
  opts: { readonly site: string; readonly keyDir?: string | undefined },
): Promise<PolicyInput> {
  const text = await readPolicyText(file);
  return fromText(files, {
    text,
    name: file,
    site: opts.site,
    keyDir: keyDirOf(file, opts.keyDir),
  });
}
