import type { SiteState, WireguardPeer, WireguardSpec } from "../../compile/desired.js";
import { NetpolError } from "../../errors.js";
import { formatCidr } from "../../net/cidr.js";
import { formatEndpoint } from "../../net/host-port.js";
import { routeKey, ruleKey } from "../../plan/keys.js";
import type { WgLive, WgPeerLive } from "../../plan/live.js";
import { loadedElements } from "../../plan/nft-elements.js";
import type { NftTable } from "../../plan/nft-table.js";
import type { Change, LiveState, Ownership, Plan } from "../../plan/types.js";
import { changedPeers, made } from "../../plan/wg-made.js";
import { nftFingerprint } from "../../render/nftables.js";
import { readCaddy } from "../../system/caddy/admin.js";
import { type RelayFiles, readRelay } from "../../system/haproxy/relay.js";
import { readIp } from "../../system/iproute2/iproute2.js";
import { readNft, readNftSkeleton } from "../../system/nftables.js";
import type { Runner } from "../../system/runner.js";
import { readListeners } from "../../system/sockets.js";
import { readSysctls } from "../../system/sysctl.js";
import { overSocket, readWireguard } from "../../system/wireguard.js";
import type { Journal } from "../state/journal.js";

/** What to read besides links, addresses, routes, rules and nftables (always read whole). */
export interface LiveWanted {
  /** Routes and rules with this protocol number are netpol's. */
  readonly protocol: number;
  readonly sysctlKeys: readonly string[];
  /** WireGuard interfaces to ask about (the policy's and the ones netpol made). */
  readonly wgNames: readonly string[];
  /** Caddy's admin address, where the policy publishes HTTP. */
  readonly proxyAdmin?: string;
  /** An apply keeps the WireGuard configs of its read for the rollback snapshot. */
  readonly wireguardConfigs?: boolean;
  /** The listening sockets, where the policy publishes TCP/UDP ports (a port taken is refused). */
  readonly listeners?: boolean;
  /** Where the PROXY-protocol relay's configuration and pid file are (the state directory). */
  readonly relay?: RelayFiles;
}

/** The sysctl keys and WireGuard names netpol owns by its record and an interrupted apply's journal. */
export function ownedNames(
  ownership: Ownership | undefined,
  journal: Journal | undefined,
): { sysctlKeys: string[]; wgNames: string[] } {
  return {
    sysctlKeys: [...(ownership?.sysctls ?? []), ...(journal?.sysctls ?? [])].map((s) => s.key),
    wgNames: [...(ownership?.links ?? []), ...(journal?.links ?? [])],
  };
}

/** What a plan or an apply of `desired` reads, with `extra` names netpol owns. */
export function wantedFor(
  desired: SiteState,
  extra: {
    sysctlKeys?: readonly string[];
    wgNames?: readonly string[];
    relay?: RelayFiles;
  } = {},
): LiveWanted {
  const admin = desired.proxy?.settings.adminListen;
  return {
    protocol: desired.protocol,
    sysctlKeys: [...new Set([...desired.sysctls.map(([k]) => k), ...(extra.sysctlKeys ?? [])])],
    wgNames: [...new Set([...desired.wireguard.map((w) => w.name), ...(extra.wgNames ?? [])])],
    ...(admin !== undefined ? { proxyAdmin: admin } : {}),
    ...(desired.published || desired.relay ? { listeners: true } : {}),
    ...(extra.relay ? { relay: extra.relay } : {}),
  };
}

/** The tools a live read asks; each part is one or a few processes whatever the state's size. */
export type Part = "ip" | "nft" | "wireguard" | "sysctls" | "proxy" | "sockets" | "relay";
const ALL: ReadonlySet<Part> = new Set([
  "ip",
  "nft",
  "wireguard",
  "sysctls",
  "proxy",
  "sockets",
  "relay",
]);

/**
 * How a plan reads the live state: by default every part from the tools (readLiveWhile); a
 * resident process reads only what changed since, and takes the rest from what it holds.
 */
export type LiveReader = (
  runner: Runner,
  protocol: Promise<number>,
  want: Promise<LiveWanted>,
) => Promise<LiveState>;

/** The `parts` asked of the tools again; the rest taken from `before`. */
export function readParts(
  runner: Runner,
  protocol: number | Promise<number>,
  wanted: LiveWanted | Promise<LiveWanted>,
  parts: ReadonlySet<Part>,
  before: LiveState | undefined,
): Promise<LiveState> {
  return read(runner, protocol, wanted, parts, before);
}

/** Configs read whole from the tools, as LiveState keeps them. */
const givenAsRead = (configs: ReadonlyMap<string, string>) =>
  new Map([...configs].map(([name, conf]) => [name, () => conf]));

async function read(
  runner: Runner,
  protocol: number | Promise<number>,
  wanted: LiveWanted | Promise<LiveWanted>,
  parts: ReadonlySet<Part>,
  before?: LiveState,
): Promise<LiveState> {
  // The tools run side by side: nothing one of them reads depends on another's answer.
  const [ip, nft, [wireguard, sysctls, proxy, listeners, relay]] = await Promise.all([
    parts.has("ip") || !before ? readIp(runner, protocol) : before,
    parts.has("nft") || !before ? readNft(runner) : before.nft,
    Promise.resolve(wanted).then((want) => {
      const admin = want.proxyAdmin;
      return Promise.all([
        parts.has("wireguard") || !before
          ? readWireguard(runner, new Set(want.wgNames), want.wireguardConfigs).then(
              ({ live, configs }) => ({ live, configs: configs && givenAsRead(configs) }),
            )
          : { live: before.wireguard, configs: before.wireguardConfigs },
        parts.has("sysctls") || !before ? readSysctls(runner, want.sysctlKeys) : before.sysctls,
        admin !== undefined && (parts.has("proxy") || !before)
          ? readCaddy(runner, admin)
          : before?.proxy,
        want.listeners && (parts.has("sockets") || !before)
          ? readListeners(runner)
          : before?.listeners,
        want.relay && (parts.has("relay") || !before) ? readRelay(want.relay) : before?.relay,
      ]);
    }),
  ]);
  // wireguard-go's sockets are machine-wide: only interfaces that are links here count.
  const here = new Set(ip.links.map((l) => l.name));
  return {
    links: ip.links,
    addresses: ip.addresses,
    routes: ip.routes,
    rules: ip.rules,
    ...(ip.catchAll ? { catchAll: ip.catchAll } : {}),
    nft,
    wireguard: wireguard.live.filter((w) => here.has(w.name)),
    sysctls,
    ...(proxy ? { proxy } : {}),
    ...(listeners ? { listeners } : {}),
    ...(relay ? { relay } : {}),
    ...(wireguard.configs ? { wireguardConfigs: wireguard.configs } : {}),
  };
}

/**
 * Reads what the diff needs, with a fixed number of processes: ip (2), nft (1), wg (0–1),
 * sysctl (0–1), node (0–1: the running Caddy's config), ss (0–1: the listening sockets), however
 * many routes, rules and peers there are.
 */
export function readLive(runner: Runner, want: LiveWanted): Promise<LiveState> {
  return read(runner, want.protocol, want, ALL);
}

/**
 * readLive while the policy is still being validated and the rest of what to read (sysctl
 * keys, WireGuard names) worked out: ip and nft start at once, and only sorting ip's answer
 * waits for the protocol.
 */
export function readLiveWhile(
  runner: Runner,
  protocol: Promise<number>,
  want: Promise<LiveWanted>,
): Promise<LiveState> {
  return read(runner, protocol, want, ALL);
}

const PARTS_OF: Record<Change["kind"], readonly Part[]> = {
  link: ["ip", "wireguard"],
  port: ["ip"],
  address: ["ip"],
  route: ["ip"],
  rule: ["ip"],
  sysctl: ["sysctls"],
  nft: ["nft"],
  wireguard: ["wireguard"],
  proxy: ["proxy"],
  certificates: ["proxy"],
  relay: ["relay", "sockets"],
};

/**
 * The routes and rules of `before` with the plan's route and rule changes made. Keys are made
 * only where something is removed: a cold apply of 10,000 routes adds them all.
 */
function withRouting(before: LiveState, plan: Plan): LiveState {
  const goneRoutes = new Set<string>();
  const goneRules = new Set<string>();
  const routes = [...before.routes.owned];
  const rules = [...before.rules.owned];
  for (const c of plan.changes) {
    if (c.kind === "route" && c.op === "remove") goneRoutes.add(routeKey(c.route));
    else if (c.kind === "rule" && c.op === "remove") goneRules.add(ruleKey(c.rule));
    else if (c.kind === "route") routes.push(c.route);
    else if (c.kind === "rule") rules.push(c.rule);
  }
  const kept = <T>(xs: T[], gone: ReadonlySet<string>, key: (x: T) => string) =>
    gone.size === 0 ? xs : xs.filter((x) => !gone.has(key(x)));
  return {
    ...before,
    routes: { ...before.routes, owned: kept(routes, goneRoutes, routeKey) },
    rules: { ...before.rules, owned: kept(rules, goneRules, ruleKey) },
  };
}

/**
 * The live state after `plan` ran, for verifying it: the tools the plan wrote to are asked
 * again, the rest is taken from `before`, which nothing of the plan changed.
 *
 * Routes and rules alone are not read back. `ip -batch` without `-force` exits 0 only when the
 * kernel acked every line; an acked `route add` or `rule add` (NLM_F_CREATE|NLM_F_EXCL) means
 * that route or rule is there as written, an acked `del` that it is gone, and neither touches
 * any other route or rule. So the routes and rules after are those before with the plan's
 * changes made, which is all a read-back would show, at the cost of listing every route again
 * (at 10,000 routes, more than the write). Links, ports and addresses are read back with them:
 * links settle asynchronously, and removing an address takes the routes through it along.
 */
export async function readAfter(
  runner: Runner,
  want: LiveWanted,
  before: LiveState,
  plan: Plan,
  expected: { readonly desired: SiteState; readonly owned: Ownership },
): Promise<{ readonly after: LiveState; readonly proven: boolean }> {
  const parts = new Set(plan.changes.flatMap((c) => PARTS_OF[c.kind]));
  parts.delete("nft");
  const routingOnly = !plan.changes.some(
    (c) => c.kind === "link" || c.kind === "port" || c.kind === "address",
  );
  if (routingOnly) parts.delete("ip");
  const wireguard = routingOnly ? wireguardAfter(runner, before, plan) : undefined;
  if (wireguard) parts.delete("wireguard");
  let known = routingOnly ? withRouting(before, plan) : before;
  if (wireguard) known = { ...known, wireguard };
  const [state, nft] = await Promise.all([
    parts.size > 0 ? read(runner, want.protocol, want, parts, known) : known,
    nftAfter(runner, before.nft, plan, expected),
  ]);
  return { after: { ...state, nft: nft.table }, proven: parts.size === 0 && !nft.read };
}

/**
 * WireGuard after the plan, where every interface it changes was written over its control
 * socket from what the plan read (system/wireguard.ts, socketWrite): a `set` answered
 * `errno=0` is in force as sent, so the interfaces are the policy's, with each kept peer's
 * handshake and counters as before. Undefined where one was not (a new interface, no socket,
 * an endpoint given as a name): then it is read back.
 */
/** The interface as `spec` makes it, each kept peer's handshake and counters as `was` had them. */
function wgLiveOf(spec: WireguardSpec, was: WgLive): WgLive {
  // Where `was` is known peer for peer (plan/wg-made.ts), only the peers that changed are made
  // again, in their places; the others are the same.
  const changed = changedPeers(spec, was);
  const olds = changed ? changed.map((i) => was.peers[i] as WgPeerLive) : was.peers;
  const had = new Map(olds.map((p) => [p.publicKey, p]));
  const peerOf = (p: WireguardPeer): WgPeerLive => {
    const kept = had.get(p.publicKey);
    return {
      publicKey: p.publicKey,
      // A peer the config gives no endpoint keeps the one it roamed to.
      endpoint: p.endpoint ? formatEndpoint(p.endpoint) : kept?.endpoint,
      allowedIps: p.allowedIps.map(formatCidr),
      latestHandshake: kept?.latestHandshake ?? 0,
      rxBytes: kept?.rxBytes ?? 0,
      txBytes: kept?.txBytes ?? 0,
      keepalive: p.keepalive,
    };
  };
  let peers: WgPeerLive[];
  if (changed) {
    peers = [...was.peers];
    for (const i of changed) peers[i] = peerOf(spec.peers[i] as WireguardPeer);
  } else peers = spec.peers.map(peerOf);
  const live = {
    name: spec.name,
    publicKey: spec.publicKey,
    listenPort: spec.listenPort ?? was.listenPort,
    peers,
  };
  return made(live, spec);
}

function wireguardAfter(runner: Runner, before: LiveState, plan: Plan): WgLive[] | undefined {
  const written = new Map<string, WgLive>();
  for (const c of plan.changes) {
    if (c.kind !== "wireguard") continue;
    const was = before.wireguard.find((w) => w.name === c.spec.name);
    // A peer with a preshared key is written by `wg syncconf` (syncLines): read it back.
    if (!was || c.spec.peers.some((p) => p.presharedKeyFile !== undefined)) return undefined;
    const now = wgLiveOf(c.spec, was);
    if (!overSocket(runner, now)) return undefined;
    written.set(now.name, now);
  }
  return before.wireguard.map((w) => written.get(w.name) ?? w);
}

/**
 * netpol's table after the plan: `nft -f` is one transaction, so its exit 0 means the kernel
 * holds the file as written, and the elements are the policy's. Only the skeleton, nft's own
 * print of the rules, is not known from the file: when just the elements changed (the table
 * had these rules and was as the last apply left it), it is the one before the write;
 * otherwise it is listed without the elements (`nft -t`), a quarter of a whole listing.
 */
async function nftAfter(
  runner: Runner,
  before: NftTable | undefined,
  plan: Plan,
  { desired, owned }: { readonly desired: SiteState; readonly owned: Ownership },
): Promise<{ readonly table: NftTable | undefined; readonly read: boolean }> {
  const change = plan.changes.find((c) => c.kind === "nft");
  if (!change) return { table: before, read: false };
  if (change.op === "remove") return { table: undefined, read: false };
  const unchanged =
    before !== undefined &&
    before.fingerprint === nftFingerprint(change.text) &&
    owned.nftSkeleton === before.skeleton;
  const skeleton = unchanged ? before.skeleton : await readNftSkeleton(runner);
  if (skeleton === undefined) {
    const message = "after apply netpol's nftables table is absent";
    throw new NetpolError("NETPOL_E_VERIFY_FAILED", message, [], { details: { step: "verify" } });
  }
  const table = {
    fingerprint: nftFingerprint(skeleton),
    skeleton,
    elements: loadedElements(desired.nftSets),
  };
  return { table, read: !unchanged };
}
