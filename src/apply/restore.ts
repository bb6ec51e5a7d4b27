import { z } from "zod";
import { type LinkSpec, NFT_TABLE, type RouteSpec, type RuleSpec } from "../compile/desired.js";
import { addressKey, routeKey, ruleKey } from "../plan/keys.js";
import type { LiveLink } from "../plan/live.js";
import { kernelListing } from "../plan/nft-table.js";
import type { LiveState, Ownership, ProxyWrite } from "../plan/types.js";
import {
  addressArgs,
  batchLine,
  linkAdd,
  linkDelete,
  linkMarkArgs,
  routeArgs,
  ruleArgs,
} from "../render/ip.js";
import { readCaddy, writeCaddy } from "../system/caddy/admin.js";
import { runIpBatch } from "../system/iproute2/iproute2.js";
import { loadNft } from "../system/nftables.js";
import type { Runner } from "../system/runner.js";
import { writeSysctls } from "../system/sysctl.js";
import { createWireguardLink, syncWireguard } from "../system/wireguard.js";
import { addressEntry, fromAddress, toAddress } from "./state/record.js";

/**
 * The state netpol owns, taken before an apply changes anything: enough to put every link,
 * address, route, rule, nft table, WireGuard config and sysctl back, and the record with them.
 * Plain JSON, so a pending `--confirm` keeps it in a 0600 file for the process that reverts.
 * It holds private keys (from `wg show all dump`): memory or 0600 files only.
 */
const family = z.union([z.literal(4), z.literal(6)]);
export const linkSpec = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("vlan"),
    name: z.string(),
    parent: z.string(),
    vlanId: z.number().int(),
  }),
  z.strictObject({ kind: z.literal("bridge"), name: z.string() }),
  z.strictObject({ kind: z.literal("wireguard"), name: z.string(), mtu: z.number().int() }),
]);
export const snapshotSchema = z.strictObject({
  protocol: z.number().int(),
  links: z.array(
    z.strictObject({
      spec: linkSpec,
      up: z.boolean(),
      mtu: z.number().int(),
      alias: z.string().nullable(),
    }),
  ),
  /** Ports of owned bridges, and devices the apply enslaves: [device, master]. */
  masters: z.array(z.tuple([z.string(), z.string().nullable()])),
  addresses: z.array(addressEntry),
  routes: z.array(
    z.strictObject({
      key: z.string(),
      add: z.string(),
      device: z.string().nullable(),
      family,
    }),
  ),
  rules: z.array(z.strictObject({ key: z.string(), add: z.string(), family })),
  nft: z.string().nullable(),
  wireguard: z.array(z.tuple([z.string(), z.string()])),
  sysctls: z.array(z.tuple([z.string(), z.string()])),
  /** The record file's text, put back as it was (absent: null). */
  record: z.string().nullable(),
  /** Caddy's config before the apply (JSON text), when the apply changes proxy routes. */
  proxy: z.strictObject({ admin: z.string(), config: z.string() }).nullable(),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

export interface SnapshotInput {
  readonly live: LiveState;
  readonly owned: Ownership;
  /**
   * Specs of links the old and the new policy name, to recreate one that goes away. Asked only
   * for an owned link the kernel does not describe whole (reading the policy in force again
   * costs as much as validating it).
   */
  readonly knownLinks: () => readonly LinkSpec[];
  /** Devices the apply makes ports of a bridge. */
  readonly enslaves: readonly string[];
  readonly sysctlKeys: readonly string[];
  readonly protocol: number;
  readonly recordText: string | undefined;
  /** The plan's write to Caddy, holding the config it replaces. */
  readonly proxy?: ProxyWrite;
}

const isWireguard = (l: LiveLink) => l.kind === "tun" || l.kind === "wireguard";

/** How to recreate `link`: from what the kernel says of it, else from a policy's spec. */
function specOf(link: LiveLink, known: () => readonly LinkSpec[]): LinkSpec | undefined {
  if (link.kind === "bridge") return { kind: "bridge", name: link.name };
  if (isWireguard(link)) return { kind: "wireguard", name: link.name, mtu: link.mtu };
  if (link.vlan)
    return { kind: "vlan", name: link.name, parent: link.vlan.parent, vlanId: link.vlan.id };
  return known().find((k) => k.name === link.name);
}

/**
 * The snapshot of `input`. Each owned WireGuard link's config comes from the live read's dump,
 * which holds all `wg showconf` would print: no second trip through wireguard-go's UAPI, and
 * the config is the one the plan was made from. An interface the read did not cover (its link
 * appeared under a name netpol did not ask about) is asked with `wg showconf`.
 */
export async function takeSnapshot(runner: Runner, input: SnapshotInput): Promise<Snapshot> {
  const wireguard: [string, string][] = [];
  for (const l of input.live.links) {
    if (!input.owned.links.includes(l.name) || !isWireguard(l)) continue;
    const read = input.live.wireguardConfigs?.get(l.name);
    const conf =
      read ?? (await runner.run("wg", ["showconf", l.name], { step: "snapshot" })).stdout;
    wireguard.push([l.name, conf]);
  }
  return snapshotOf(input, wireguard);
}

/** The snapshot of `input`, given `wg showconf` of each owned WireGuard link. Pure. */
function snapshotOf(
  input: SnapshotInput,
  wireguard: readonly (readonly [string, string])[],
): Snapshot {
  const { live, owned, protocol } = input;
  const ownedLinks = live.links.filter((l) => owned.links.includes(l.name));
  const ownedNames = new Set(ownedLinks.map((l) => l.name));
  const liveKeys = new Set(live.addresses.map(addressKey));
  let known: readonly LinkSpec[] | undefined;
  const knownLinks = () => {
    known ??= input.knownLinks();
    return known;
  };
  return {
    protocol,
    links: ownedLinks.flatMap((l) => {
      const spec = specOf(l, knownLinks);
      return spec ? [{ spec, up: l.up, mtu: l.mtu, alias: l.alias ?? null }] : [];
    }),
    masters: live.links
      .filter(
        (l) =>
          (l.master !== undefined && ownedNames.has(l.master)) || input.enslaves.includes(l.name),
      )
      .map((l) => [l.name, l.master ?? null]),
    addresses: owned.addresses.filter((a) => liveKeys.has(addressKey(a))).map(fromAddress),
    routes: live.routes.owned.map((r) => ({
      key: routeKey(r),
      add: batchLine(routeArgs("add", r, protocol)),
      device: r.type === "unicast" ? r.device : null,
      family: r.dst.family,
    })),
    rules: live.rules.owned.map((r) => ({
      key: ruleKey(r),
      add: batchLine(ruleArgs("add", r, protocol)),
      family: r.family,
    })),
    nft: live.nft ? kernelListing(live.nft) : null,
    wireguard: wireguard.map(([name, conf]) => [name, conf]),
    sysctls: input.sysctlKeys.flatMap((k) => {
      const v = live.sysctls.get(k);
      return v === undefined ? [] : [[k, v] as [string, string]];
    }),
    record: input.recordText ?? null,
    proxy: input.proxy
      ? { admin: input.proxy.admin, config: JSON.stringify(input.proxy.previous) }
      : null,
  };
}

/** What takes the live state back to a snapshot, as plain commands. */
interface RestoreScript {
  readonly createWireguard: readonly string[];
  readonly links: readonly string[];
  readonly wireguard: readonly (readonly [string, string])[];
  readonly nft: string | undefined;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly sysctls: readonly (readonly [string, string])[];
  readonly deleteLinks: readonly string[];
  /** Caddy's config before the apply (JSON), when the apply changed proxy routes. */
  readonly proxy?: { readonly admin: string; readonly config: string };
}

function linkLines(snapshot: Snapshot, now: LiveState, site: string): string[][] {
  const byName = new Map(now.links.map((l) => [l.name, l]));
  const lines: string[][] = [];
  for (const { spec, up, mtu, alias } of snapshot.links) {
    const have = byName.get(spec.name);
    const set = (...words: string[]) => lines.push(["link", "set", "dev", spec.name, ...words]);
    if (!have && spec.kind !== "wireguard") lines.push(...linkAdd(spec));
    if (alias !== null && have?.alias !== alias) set("alias", alias);
    else if (!have && alias === null) lines.push(linkMarkArgs(spec.name, site));
    if (have?.mtu !== mtu) set("mtu", String(mtu));
    if (have?.up !== up) set(up ? "up" : "down");
  }
  for (const [device, master] of snapshot.masters) {
    if ((byName.get(device)?.master ?? null) === master) continue;
    lines.push(["link", "set", "dev", device, ...(master ? ["master", master] : ["nomaster"])]);
  }
  return lines;
}

/**
 * From the live state now back to the snapshot. Routes and rules are compared whole (all that
 * carry netpol's protocol are its own); links and addresses as far as netpol owns them now or
 * owned them then; sysctls by the keys the snapshot holds.
 */
export function computeRestore(
  snapshot: Snapshot,
  now: LiveState,
  ownedNow: Pick<Ownership, "links" | "addresses">,
  site: string,
): RestoreScript {
  const protocol = snapshot.protocol;
  const wanted = new Set(snapshot.links.map((l) => l.spec.name));
  const present = new Set(now.links.map((l) => l.name));
  const upAfter = new Set([
    ...now.links.filter((l) => l.up && !wanted.has(l.name)).map((l) => l.name),
    ...snapshot.links.filter((l) => l.up).map((l) => l.spec.name),
  ]);
  const beforeRoutes = new Set(snapshot.routes.map((r) => r.key));
  const beforeRules = new Set(snapshot.rules.map((r) => r.key));
  const nowRoutes = new Set(now.routes.owned.map(routeKey));
  const nowRules = new Set(now.rules.owned.map(ruleKey));
  const beforeAddresses = snapshot.addresses.map(toAddress);
  const beforeAddressKeys = new Set(beforeAddresses.map(addressKey));
  const nowAddressKeys = new Set(now.addresses.map(addressKey));
  const exists = (device: string) => present.has(device) || wanted.has(device);

  const lines = (fam: 4 | 6) => {
    const inFamily = (x: RouteSpec | RuleSpec) => ("dst" in x ? x.dst.family : x.family) === fam;
    const addresses = (op: "add" | "del") =>
      fam !== 4
        ? []
        : op === "del"
          ? ownedNow.addresses
              .filter(
                (a) => nowAddressKeys.has(addressKey(a)) && !beforeAddressKeys.has(addressKey(a)),
              )
              .map((a) => batchLine(addressArgs("del", a)))
          : beforeAddresses
              .filter((a) => !nowAddressKeys.has(addressKey(a)) && exists(a.device))
              .map((a) => batchLine(addressArgs("add", a)));
    return [
      ...now.rules.owned
        .filter((r) => inFamily(r) && !beforeRules.has(ruleKey(r)))
        .map((r) => batchLine(ruleArgs("del", r, protocol))),
      ...now.routes.owned
        .filter((r) => inFamily(r) && !beforeRoutes.has(routeKey(r)))
        .map((r) => batchLine(routeArgs("del", r, protocol))),
      ...addresses("del"),
      ...addresses("add"),
      ...snapshot.routes
        .filter(
          (r) =>
            r.family === fam &&
            !nowRoutes.has(r.key) &&
            (r.device === null || upAfter.has(r.device)),
        )
        .map((r) => r.add),
      ...snapshot.rules.filter((r) => r.family === fam && !nowRules.has(r.key)).map((r) => r.add),
    ];
  };
  const reset = `table inet ${NFT_TABLE} {}\ndelete table inet ${NFT_TABLE}\n`;
  const nftNow = now.nft?.listing ?? null;
  return {
    createWireguard: snapshot.links
      .filter((l) => l.spec.kind === "wireguard" && !present.has(l.spec.name))
      .map((l) => l.spec.name),
    links: linkLines(snapshot, now, site).map(batchLine),
    wireguard: snapshot.wireguard,
    nft:
      snapshot.nft === nftNow
        ? undefined
        : snapshot.nft === null
          ? reset
          : `${reset}${snapshot.nft}\n`,
    v4: lines(4),
    v6: lines(6),
    sysctls: snapshot.sysctls.filter(([k, v]) => now.sysctls.get(k) !== v),
    deleteLinks: ownedNow.links.filter((name) => present.has(name) && !wanted.has(name)),
    ...(snapshot.proxy ? { proxy: snapshot.proxy } : {}),
  };
}

/** Runs every part even if one fails, and returns what failed. */
export async function runRestore(
  runner: Runner,
  script: RestoreScript,
  secretDir: string,
): Promise<string[]> {
  const failures: string[] = [];
  const attempt = async (what: string, work: () => Promise<void>) => {
    await work().catch((err: unknown) =>
      failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  const batch =
    (lines: readonly string[], fam: 6 | "any" = "any") =>
    () =>
      runIpBatch(runner, lines, fam, "rollback", true);
  for (const name of script.createWireguard) {
    await attempt(`link ${name}`, () => createWireguardLink(runner, name, "rollback"));
  }
  await attempt("links", batch(script.links));
  for (const [name, conf] of script.wireguard) {
    await attempt(`wireguard ${name}`, () =>
      syncWireguard(runner, name, conf, secretDir, "rollback"),
    );
  }
  if (script.nft !== undefined)
    await attempt("nftables", () => loadNft(runner, script.nft as string, "rollback"));
  await attempt("routing", batch(script.v4));
  await attempt("routing (IPv6)", batch(script.v6, 6));
  await attempt("sysctls", () => writeSysctls(runner, script.sysctls, "rollback"));
  await attempt("links", batch(script.deleteLinks.map((n) => batchLine(linkDelete(n)))));
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
