import * as z from "zod";
import type { LinkSpec } from "../../compile/desired.js";
import { addressKey, routeKey, ruleKey } from "../../plan/keys.js";
import type { LiveLink } from "../../plan/live.js";
import { kernelListing } from "../../plan/nft-table.js";
import type { LiveState, Ownership, ProxyWrite, RelayWrite } from "../../plan/types.js";
import { batchLine, routeArgs, ruleArgs } from "../../render/ip.js";
import type { Runner } from "../../system/runner.js";
import { addressEntry, fromAddress, linkSpec } from "../state/schemas.js";

/**
 * The state netpol owns, taken before an apply changes anything: enough to put every link,
 * address, route, rule, nft table, WireGuard config and sysctl back, and the record with them.
 * Plain JSON, so a pending `--confirm` keeps it in a 0600 file for the process that reverts.
 * It holds private keys (from `wg show NAME dump`): memory or 0600 files only.
 */
const family = z.union([z.literal(4), z.literal(6)]);
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
  /** The relay's configuration before the apply (null: none ran), when the apply changes it. */
  relay: z
    .strictObject({
      files: z.strictObject({ config: z.string(), pid: z.string() }),
      config: z.string().nullable(),
    })
    .nullable()
    .default(null),
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
  /** The plan's change of the relay, holding what it replaces. */
  readonly relay?: RelayWrite;
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
  const wireguard: [string, () => string][] = [];
  for (const l of input.live.links) {
    if (!input.owned.links.includes(l.name) || !isWireguard(l)) continue;
    let conf = input.live.wireguardConfigs?.get(l.name);
    if (!conf) {
      const { stdout } = await runner.run("wg", ["showconf", l.name], { step: "snapshot" });
      conf = () => stdout;
    }
    wireguard.push([l.name, conf]);
  }
  return withConfigs(snapshotOf(input), wireguard);
}

/**
 * `snapshot` with each WireGuard link's config, made when first read (a rollback, or a
 * `--confirm` keeping the snapshot): a resident's model makes it from every peer.
 */
function withConfigs(
  snapshot: Omit<Snapshot, "wireguard">,
  configs: readonly (readonly [string, () => string])[],
): Snapshot {
  let made: [string, string][] | undefined;
  return Object.defineProperty(snapshot, "wireguard", {
    enumerable: true,
    get: () => {
      made ??= configs.map(([name, conf]) => [name, conf()]);
      return made;
    },
  }) as Snapshot;
}

/** The snapshot of `input`, but for its WireGuard configs. Pure. */
function snapshotOf(input: SnapshotInput): Omit<Snapshot, "wireguard"> {
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
    sysctls: input.sysctlKeys.flatMap((k) => {
      const v = live.sysctls.get(k);
      return v === undefined ? [] : [[k, v] as [string, string]];
    }),
    record: input.recordText ?? null,
    proxy: input.proxy
      ? { admin: input.proxy.admin, config: JSON.stringify(input.proxy.previous) }
      : null,
    relay: input.relay
      ? {
          files: input.relay.live.files,
          // A configuration nothing runs is no state to go back to.
          config: input.relay.live.pid !== undefined ? (input.relay.live.config ?? null) : null,
        }
      : null,
  };
}
