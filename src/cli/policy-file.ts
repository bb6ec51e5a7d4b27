import { readFile } from "node:fs/promises";
import path from "node:path";
import { NetpolError } from "../errors.js";
import { type LoadedPolicy, parsePolicy } from "../policy/load.js";

export interface PolicyFile extends LoadedPolicy {
  readonly file: string;
  /** Key file names in the policy are relative to this directory (the policy's own by default). */
  readonly keyDir: string;
}

export async function readPolicyFile(file: string, keyDir?: string): Promise<PolicyFile> {
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new NetpolError(
      "NETPOL_E_POLICY_UNREADABLE",
      `cannot read policy ${file}: ${err.code ?? err.message}`,
    );
  });
  return { ...parsePolicy(text, file), file, keyDir: keyDir ?? path.dirname(path.resolve(file)) };
}
