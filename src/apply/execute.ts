import type { RouteSpec, RuleSpec } from "../compile/desired.js";
import type { Family } from "../net/cidr.js";
import type { Change, LiveState, Plan } from "../plan/types.js";
import { narrowed } from "../plan/wg-made.js";
import {
  addressArgs,
  batchLine,
  linkAdd,
  linkDelete,
  linkMarkArgs,
  linkUp,
  portSet,
  routeArgs,
  ruleArgs,
} from "../render/ip.js";
import { renderWireguard, wireguardConfig } from "../render/wireguard.js";
import { writeCaddy } from "../system/caddy/admin.js";
import { putRelay } from "../system/haproxy/relay.js";
import { readLinks, runIpBatch } from "../system/iproute2/iproute2.js";
import { writeNft } from "../system/nftables.js";
import type { Runner } from "../system/runner.js";
import { writeSysctls } from "../system/sysctl.js";
import { createWireguardLink, syncWireguard } from "../system/wireguard.js";

export const STEPS = [
  "links",
  "sysctls",
  "routing",
  "nftables",
  "wireguard",
  "link removal",
  "relay",
  "proxy",
] as const;
export type Step = (typeof STEPS)[number];

function pick<K extends Change["kind"], O extends string>(
  changes: readonly Change[],
  kind: K,
  op: O,
) {
  return changes.filter(
    (c): c is Extract<Change, { kind: K; op: O }> => c.kind === kind && c.op === op,
  );
}

/** The ip(8) lines of one family's routing changes: removals first, so a changed rule can take its slot. */
export function routingLines(plan: Plan, family: Family): string[] {
  const { changes, protocol } = plan;
  const inFamily = (x: RouteSpec | RuleSpec) => ("dst" in x ? x.dst.family : x.family) === family;
  const verb = (op: "add" | "remove") => (op === "add" ? "add" : "del");
  const addresses = (op: "add" | "remove") =>
    family === 4 ? pick(changes, "address", op).map((c) => addressArgs(verb(op), c.address)) : [];
  const routes = (op: "add" | "remove") =>
    pick(changes, "route", op)
      .filter((c) => inFamily(c.route))
      .map((c) => routeArgs(verb(op), c.route, protocol));
  const rules = (op: "add" | "remove") =>
    pick(changes, "rule", op)
      .filter((c) => inFamily(c.rule))
      .map((c) => ruleArgs(verb(op), c.rule, protocol));
  // Addresses go last on the way out and first on the way in: removing a device's last IPv4
  // address takes the routes through it along, and a gateway needs its address first.
  return [
    ...rules("remove"),
    ...routes("remove"),
    ...addresses("remove"),
    ...addresses("add"),
    ...routes("add"),
    ...rules("add"),
  ].map(batchLine);
}

/**
 * Deletes links. One may have gone by itself since the plan read it (wireguard-go exits on its
 * own, and its device goes with it): it is then where the plan wanted it. So on a failure the
 * links are read again and those still there deleted, once.
 */
async function removeLinks(runner: Runner, names: readonly string[]): Promise<void> {
  const remove = (left: readonly string[]) =>
    runIpBatch(
      runner,
      left.map((n) => batchLine(linkDelete(n))),
      "any",
      "link removal",
    );
  try {
    await remove(names);
  } catch (err) {
    const present = new Set((await readLinks(runner, "link removal")).map((l) => l.name));
    const left = names.filter((n) => present.has(n));
    if (left.length === names.length) throw err;
    await remove(left);
  }
}

/** Waits for every one; then throws the first failure in the order given. */
async function settleAll(work: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * Carries a plan out: links first, then the steps that only need them side by side, link
 * removal, the PROXY-protocol relay and the proxy last; a fixed number of processes per step (a WireGuard
 * interface costs one `wg` call). Each command names its step, so a failure says where it was.
 * A failure may leave links made but not yet marked: the journal names every link the plan
 * creates, so the rollback counts those as netpol's too (site/ownership.ts).
 */
export async function execute(
  plan: Plan,
  runner: Runner,
  privateKeys: ReadonlyMap<string, string>,
  /** A private directory for the 0600 files that hand WireGuard configs to `wg`. */
  secretDir: string,
  /** The state the plan was made from: a WireGuard write over a socket is computed from it. */
  before?: LiveState,
): Promise<void> {
  const added = pick(plan.changes, "link", "add").map((c) => c.link);
  const wireguard = added.filter((l) => l.kind === "wireguard");
  const kernelLinks = added.filter((l) => l.kind !== "wireguard");
  // The mark that makes a link netpol's: the kernel keeps it for as long as the link lives.
  const setUp = (links: typeof added) => [
    ...links.map((l) => linkMarkArgs(l.name, plan.site)),
    ...links.map((l) => linkUp(l.name, l.kind === "wireguard" ? l.mtu : undefined)),
  ];
  const linkLines = [
    ...kernelLinks.flatMap((l) => linkAdd(l)),
    ...pick(plan.changes, "port", "add").map((c) => portSet(c.port)),
    ...setUp(kernelLinks),
    ...pick(plan.changes, "link", "set").map((c) => linkUp(c.name, c.mtu)),
  ].map(batchLine);
  await runIpBatch(runner, linkLines, "any", "links");
  // wireguard-go only once the kernel's links are made: it reads every link event of the
  // namespace, and one it started a moment ago, still bringing its device up, stops reading
  // for that long. A burst of links (40 bridges, made and brought up) then overflows its
  // netlink socket, which it takes for fatal: it exits, and its device goes with it.
  for (const link of wireguard) await createWireguardLink(runner, link.name, "links");
  await runIpBatch(runner, setUp(wireguard).map(batchLine), "any", "links");

  // Once the links exist, sysctls, routing, nftables and WireGuard need nothing from each
  // other: they go in side by side. Each runs to its end before a failure is reported, so the
  // rollback never races a command still at work.
  await settleAll([
    writeSysctls(
      runner,
      pick(plan.changes, "sysctl", "set").map((c) => [c.key, c.to] as const),
      "sysctls",
    ),
    (async () => {
      await runIpBatch(runner, routingLines(plan, 4), "any", "routing");
      await runIpBatch(runner, routingLines(plan, 6), 6, "routing");
    })(),
    (async () => {
      for (const c of plan.changes) {
        if (c.kind === "nft") await writeNft(runner, c, "nftables");
      }
    })(),
    (async () => {
      for (const c of pick(plan.changes, "wireguard", "sync")) {
        const was = before?.wireguard.find((w) => w.name === c.spec.name);
        // Only the peers that may differ are compared and sent (plan/wg-made.ts).
        const known = was && narrowed(c.spec, was);
        await syncWireguard(
          runner,
          c.spec.name,
          () => renderWireguard(c.spec, privateKeys),
          secretDir,
          "wireguard",
          known && { now: known.live, config: wireguardConfig(known.spec, privateKeys) },
        );
      }
    })(),
  ]);
  await removeLinks(
    runner,
    pick(plan.changes, "link", "remove").map((c) => c.name),
  );
  // The relay before Caddy, which may send HTTP services to it.
  if (plan.relay) await putRelay(runner, plan.relay.live, plan.relay.config, "relay");
  // Last: the routes lead into the tunnel set up above; one atomic write, whatever their number.
  if (plan.proxy) await writeCaddy(runner, plan.proxy, "proxy");
}
