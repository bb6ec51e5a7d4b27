import { stat } from "node:fs/promises";
import path from "node:path";

/**
 * Where the namespace locks live: a runtime directory, emptied at boot as the namespaces are.
 * `$NETPOL_LOCK_DIR` moves it (a test's own directory).
 */
export const DEFAULT_LOCK_DIR = "/run/netpol/locks";

/**
 * The lock file of the namespace named `netns` (of the one this process runs in, without a
 * name). It is named by the namespace itself, the device and inode of its nsfs file, not by
 * a state directory or a name: two state directories, or two names bound to one namespace,
 * find the same lock. Undefined where the namespace does not exist here (its commands fail on
 * their own; a fake kernel's namespaces are not the machine's).
 */
export async function namespaceLockFile(
  netns: string | undefined,
  dir = process.env.NETPOL_LOCK_DIR || DEFAULT_LOCK_DIR,
): Promise<string | undefined> {
  if (netns !== undefined && (netns.includes("/") || netns === "." || netns === ".."))
    return undefined;
  const nsfs = netns === undefined ? "/proc/self/ns/net" : path.join("/run/netns", netns);
  const found = await stat(nsfs).catch(() => undefined);
  if (!found) return undefined;
  return path.join(dir, `netns-${found.dev}-${found.ino}.lock`);
}
