import { randomBytes } from "node:crypto";
import { NetpolError } from "../errors.js";
import type { Etcd } from "./etcd/client.js";
import { prefixEnd } from "./etcd/client.js";
import { desiredKey, HEAD, POLICIES, REPORTS, ROOT, reportsOf } from "./keys.js";

/**
 * etcd's roles and users for a fleet (etcd RBAC): the publisher alone writes the head, the
 * policies and each site's desired state; each site reads its own desired state and the
 * reports (its wave waits on the wave before), and writes only its own reports.
 */
type Perm = { readonly type: "READ" | "READWRITE"; readonly key: string; readonly prefix: boolean };

export const PUBLISHER = "netpol-publisher";
export const siteUser = (site: string) => `netpol-site-${site}`;

export function publisherPerms(): Perm[] {
  return [
    { type: "READWRITE", key: HEAD, prefix: false },
    { type: "READWRITE", key: POLICIES, prefix: true },
    { type: "READWRITE", key: `${ROOT}sites/`, prefix: true },
    { type: "READ", key: REPORTS, prefix: true },
  ];
}

export function sitePerms(site: string): Perm[] {
  return [
    { type: "READ", key: desiredKey(site), prefix: false },
    { type: "READ", key: REPORTS, prefix: true },
    { type: "READWRITE", key: reportsOf(site), prefix: true },
  ];
}

const b64 = (t: string) => Buffer.from(t).toString("base64");

/** etcd's answer that something already exists is no error here: granting twice changes nothing. */
const exists = (err: unknown) => err instanceof NetpolError && /already exists/.test(err.message);

async function ensureRole(etcd: Etcd, role: string, perms: readonly Perm[]): Promise<void> {
  await etcd.call("/v3/auth/role/add", { name: role }).catch((err: unknown) => {
    if (!exists(err)) throw err;
  });
  for (const p of perms) {
    await etcd.call("/v3/auth/role/grant", {
      name: role,
      perm: {
        permType: p.type,
        key: b64(p.key),
        ...(p.prefix ? { range_end: prefixEnd(p.key) } : {}),
      },
    });
  }
}

/** Adds the user with a new password unless it exists; the password when it was made. */
async function ensureUser(etcd: Etcd, user: string, role: string): Promise<string | undefined> {
  const password = randomBytes(24).toString("base64url");
  const made = await etcd.call("/v3/auth/user/add", { name: user, password }).then(
    () => true,
    (err: unknown) => {
      if (!exists(err)) throw err;
      return false;
    },
  );
  await etcd.call("/v3/auth/user/grant", { user, role });
  return made ? password : undefined;
}

export interface Granted {
  /** Users made now, with their passwords: each goes to its site's password file, nowhere else. */
  readonly created: ReadonlyMap<string, string>;
  readonly existing: readonly string[];
  readonly authEnabled: boolean;
}

/** Roles and users for the publisher and each of `sites`; turns authentication on last. */
export async function grantFleet(
  etcd: Etcd,
  sites: readonly string[],
  enableAuth: boolean,
): Promise<Granted> {
  const created = new Map<string, string>();
  const existing: string[] = [];
  const users: [string, readonly Perm[]][] = [
    [PUBLISHER, publisherPerms()],
    ...sites.map((s): [string, readonly Perm[]] => [siteUser(s), sitePerms(s)]),
  ];
  for (const [user, perms] of users) {
    await ensureRole(etcd, user, perms);
    const password = await ensureUser(etcd, user, user);
    if (password) created.set(user, password);
    else existing.push(user);
  }
  if (enableAuth) {
    // etcd turns authentication on only with a root user: made here when there is none.
    await ensureRole(etcd, "root", []);
    const password = await ensureUser(etcd, "root", "root");
    if (password) created.set("root", password);
    await etcd.call("/v3/auth/enable", {});
  }
  return { created, existing, authEnabled: enableAuth };
}
