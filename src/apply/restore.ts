import { type AddressSpec, NFT_TABLE, type RouteSpec, type RuleSpec } from "../compile/desired.js";
import type { Family } from "../net/cidr.js";
import { addressKey, routeKey, ruleKey } from "../plan/keys.js";
import type { LiveState, Plan } from "../plan/types.js";
import { addressArgs, batchLine, linkDelete, routeArgs, ruleArgs } from "../render/ip.js";
import { readCaddy, writeCaddy } from "../system/caddy/admin.js";
import { runIpBatch } from "../system/iproute2/iproute2.js";
import { loadNft } from "../system/nftables.js";
import type { Runner } from "../system/runner.js";
import { writeSysctls } from "../system/sysctl.js";
import { syncWireguard } from "../system/wireguard.js";

/** The owned state before an apply, enough to put it back. Holds private keys: memory or 0600 only. */
export interface Snapshot {
  readonly live: LiveState;
  /** `wg showconf` of each WireGuard interface the plan touches that existed before. */
  readonly wgConfs: ReadonlyMap<string, string>;
}

/** Plain strings only, so a pending `--confirm` can keep it in a file for a later process. */
export interface RestoreScript {
  readonly wireguard: readonly (readonly [string, string])[];
  readonly nft: string | undefined;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly sysctls: readonly (readonly [string, string])[];
  readonly deleteLinks: readonly string[];
  /** Caddy's config before the apply (JSON), when the apply changed proxy routes. */
  readonly proxy?: { readonly admin: string; readonly config: string };
}

export async function takeSnapshot(runner: Runner, live: LiveState, plan: Plan): Promise<Snapshot> {
  const wgConfs = new Map<string, string>();
  for (const c of plan.changes) {
    if (c.kind !== "wireguard" || !live.wireguard.some((w) => w.name === c.spec.name)) continue;
    const { stdout } = await runner.run("wg", ["showconf", c.spec.name], { step: "snapshot" });
    wgConfs.set(c.spec.name, stdout);
  }
  return { live, wgConfs };
}

function swap<T>(before: readonly T[], now: readonly T[], key: (t: T) => string) {
  const had = new Set(before.map(key));
  const has = new Set(now.map(key));
  return {
    drop: now.filter((x) => !had.has(key(x))),
    restore: before.filter((x) => !has.has(key(x))),
  };
}

/**
 * From the state now back to the snapshot. Routes and rules are compared whole (all of them
 * are netpol's); addresses, sysctls and links only as far as this plan changed them.
 */
export function computeRestore(
  snapshot: Snapshot,
  now: LiveState,
  plan: Plan,
  created: readonly string[],
): RestoreScript {
  const { live: before } = snapshot;
  const protocol = plan.protocol;
  const linksNow = new Set(now.links.map((l) => l.name));
  const upNow = new Set(now.links.filter((l) => l.up).map((l) => l.name));
  const deviceUp = (r: RouteSpec) => r.type !== "unicast" || upNow.has(r.device);
  const routes = swap(before.routes.owned, now.routes.owned, routeKey);
  const rules = swap(before.rules.owned, now.rules.owned, ruleKey);
  const addressesNow = new Set(now.addresses.map(addressKey));
  const has = (wanted: AddressSpec) => addressesNow.has(addressKey(wanted));
  const addresses = (op: "add" | "remove") =>
    plan.changes.flatMap((c) => {
      if (c.kind !== "address" || c.op !== op) return [];
      const present = has(c.address);
      if (op === "add" && present) return [addressArgs("del", c.address)];
      if (op === "remove" && !present && linksNow.has(c.address.device))
        return [addressArgs("add", c.address)];
      return [];
    });
  const lines = (family: Family) => {
    const inFamily = (x: RouteSpec | RuleSpec) => ("dst" in x ? x.dst.family : x.family) === family;
    return [
      ...rules.drop.filter(inFamily).map((r) => ruleArgs("del", r, protocol)),
      ...routes.drop.filter(inFamily).map((r) => routeArgs("del", r, protocol)),
      // The plan's address additions are undone, then its removals (see execute's order).
      ...(family === 4 ? [...addresses("add"), ...addresses("remove")] : []),
      ...routes.restore
        .filter((r) => inFamily(r) && deviceUp(r))
        .map((r) => routeArgs("add", r, protocol)),
      ...rules.restore.filter(inFamily).map((r) => ruleArgs("add", r, protocol)),
    ].map(batchLine);
  };
  const reset = `table inet ${NFT_TABLE} {}\ndelete table inet ${NFT_TABLE}\n`;
  const nft =
    before.nftListing === now.nftListing
      ? undefined
      : before.nftListing === undefined
        ? reset
        : `${reset}${before.nftListing}\n`;
  return {
    wireguard: [...snapshot.wgConfs].filter(([name]) => linksNow.has(name)),
    nft,
    v4: lines(4),
    v6: lines(6),
    sysctls: plan.changes.flatMap((c) =>
      c.kind === "sysctl" && c.from !== undefined ? [[c.key, c.from] as const] : [],
    ),
    deleteLinks: created.filter((name) => linksNow.has(name)),
    ...(plan.proxy
      ? { proxy: { admin: plan.proxy.admin, config: JSON.stringify(plan.proxy.previous) } }
      : {}),
  };
}

/** Runs every part even if one fails, and returns what failed. */
export async function runRestore(runner: Runner, script: RestoreScript): Promise<string[]> {
  const failures: string[] = [];
  const attempt = async (what: string, work: () => Promise<void>) => {
    await work().catch((err: unknown) =>
      failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  for (const [name, conf] of script.wireguard) {
    await attempt(`wireguard ${name}`, () => syncWireguard(runner, name, conf, "rollback"));
  }
  if (script.nft !== undefined)
    await attempt("nftables", () => loadNft(runner, script.nft as string, "rollback"));
  await attempt("routing", () => runIpBatch(runner, script.v4, "any", "rollback", true));
  await attempt("routing (IPv6)", () => runIpBatch(runner, script.v6, 6, "rollback", true));
  await attempt("sysctls", () => writeSysctls(runner, script.sysctls, "rollback"));
  await attempt("links", () =>
    runIpBatch(
      runner,
      script.deleteLinks.map((n) => batchLine(linkDelete(n))),
      "any",
      "rollback",
      true,
    ),
  );
  const proxy = script.proxy;
  if (proxy) await attempt("Caddy config", () => restoreCaddy(runner, proxy.admin, proxy.config));
  return failures;
}

/**
 * Puts Caddy's earlier config back, unless Caddy still runs it (it refused the new one). Read
 * first: the write must carry the ETag of what Caddy runs now.
 */
async function restoreCaddy(runner: Runner, admin: string, config: string): Promise<void> {
  const now = await readCaddy(runner, admin);
  if (!now.reachable) throw new Error(now.error);
  if (JSON.stringify(now.config) === config) return;
  await writeCaddy(runner, { admin, etag: now.etag, config: JSON.parse(config) }, "rollback");
}
