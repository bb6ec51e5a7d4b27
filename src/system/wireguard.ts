import { NetpolError } from "../errors.js";
import type { WgLive, WgPeerLive } from "../plan/live.js";
import type { Runner } from "./runner.js";
import { withSecretFile } from "./secret-file.js";
import {
  addressedEndpoints,
  deviceDumpLines,
  parseWgConfig,
  syncLines,
  type WgConfig,
  type WireguardControl,
} from "./wireguard-uapi.js";

/**
 * The dump's lines about the interfaces named (all without `names`). wireguard-go's sockets are
 * machine-wide, so the dump also lists every other namespace's interfaces: their lines are
 * skipped before they are split into fields.
 */
function* dumpLines(stdout: string, names?: ReadonlySet<string>): Generator<string[]> {
  for (const line of stdout.split("\n")) {
    if (names && !names.has(line.slice(0, line.indexOf("\t")))) continue;
    yield line.split("\t");
  }
}

/**
 * Parses `wg show all dump`, without the private key column: only configsOfWgDump, read for an
 * apply's rollback snapshot, keeps the keys (in memory or 0600 files only).
 */
export function parseWgDump(stdout: string, names?: ReadonlySet<string>): WgLive[] {
  const byName = new Map<string, { publicKey: string; listenPort: number; peers: WgPeerLive[] }>();
  for (const f of dumpLines(stdout, names)) {
    const [name] = f;
    if (name === undefined || name === "") continue;
    if (f.length === 5) {
      byName.set(name, { publicKey: f[2] ?? "", listenPort: Number(f[3]), peers: [] });
    } else if (f.length === 9) {
      const endpoint = f[3] === "(none)" ? undefined : f[3];
      const allowed = f[4] === "(none)" || f[4] === undefined ? [] : f[4].split(",");
      byName.get(name)?.peers.push({
        publicKey: f[1] ?? "",
        endpoint,
        allowedIps: allowed,
        latestHandshake: Number(f[5]),
        rxBytes: Number(f[6]),
        txBytes: Number(f[7]),
        keepalive: f[8] === "off" ? undefined : Number(f[8]),
      });
    }
  }
  return [...byName].map(([name, v]) => ({ name, ...v }));
}

/** What `wg showconf` prints of one peer; "(none)", "off" and undefined are not given. */
interface ConfPeer {
  readonly publicKey: string;
  readonly presharedKey?: string | undefined;
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
  readonly keepalive: string | number | undefined;
}

const given = (v: string | number | undefined): v is string | number =>
  v !== undefined && v !== "(none)" && v !== "off" && v !== 0;

/**
 * Each peer's section, made once per peer object: a resident's rollback snapshot makes the
 * config of an interface whose peers are, but for the changed ones, the objects of the last
 * (plan/wg-made.ts).
 */
const sections = new WeakMap<ConfPeer, string>();

function section(p: ConfPeer): string {
  let text = sections.get(p);
  if (text === undefined) {
    const lines = ["", "[Peer]", `PublicKey = ${p.publicKey}`];
    if (given(p.presharedKey)) lines.push(`PresharedKey = ${p.presharedKey}`);
    if (p.allowedIps.length > 0) lines.push(`AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (given(p.endpoint)) lines.push(`Endpoint = ${p.endpoint}`);
    if (given(p.keepalive)) lines.push(`PersistentKeepalive = ${p.keepalive}`);
    text = lines.join("\n");
    sections.set(p, text);
  }
  return text;
}

/** One interface's config as `wg showconf` prints it. It holds the private key. */
function showconf(
  head: { listenPort: number; fwmark: string | undefined; privateKey: string | undefined },
  peers: Iterable<ConfPeer>,
): string {
  const conf = ["[Interface]"];
  if (head.listenPort > 0) conf.push(`ListenPort = ${head.listenPort}`);
  if (given(head.fwmark)) conf.push(`FwMark = ${head.fwmark}`);
  if (given(head.privateKey)) conf.push(`PrivateKey = ${head.privateKey}`);
  for (const p of peers) conf.push(section(p));
  return `${conf.join("\n")}\n`;
}

/**
 * Each interface's config as `wg showconf` prints it, from the same dump: what a rollback hands
 * `wg syncconf` to put the interface back. It holds the private key: memory or 0600 files only.
 */
export function configsOfWgDump(stdout: string, names?: ReadonlySet<string>): Map<string, string> {
  const read = new Map<string, { head: Parameters<typeof showconf>[0]; peers: ConfPeer[] }>();
  for (const f of dumpLines(stdout, names)) {
    const [name = ""] = f;
    if (f.length === 5) {
      const head = { listenPort: Number(f[3]), fwmark: f[4], privateKey: f[1] };
      read.set(name, { head, peers: [] });
    } else if (f.length === 9) {
      const allowed = f[4] === undefined || f[4] === "(none)" ? [] : f[4].split(",");
      read.get(name)?.peers.push({
        publicKey: f[1] ?? "",
        presharedKey: f[2],
        endpoint: f[3],
        allowedIps: allowed,
        keepalive: f[8],
      });
    }
  }
  return new Map([...read].map(([name, { head, peers }]) => [name, showconf(head, peers)]));
}

/**
 * One interface's config as `wg showconf` prints it, from what a read found and the interface's
 * private key (a resident's rollback snapshot, without reading every peer again).
 */
export function configOfLive(live: WgLive, privateKey: string): string {
  return showconf({ listenPort: live.listenPort, fwmark: undefined, privateKey }, live.peers);
}

interface WgRead {
  readonly live: WgLive[];
  /** With `configs` asked for: each interface's config for a rollback (private keys in it). */
  readonly configs?: ReadonlyMap<string, string>;
}

/**
 * The interfaces named, each read on its own: never `wg show all`, which lists wireguard-go's
 * machine-wide socket directory and unlinks every socket there whose connect() is refused,
 * such as another program's wireguard-go that has bound its socket and not yet listens on it
 * (wireguard-tools' ipc.c, userspace_has_wireguard_interface). Sockets are shared by every
 * namespace, so the caller also checks that a name is a link of its own namespace.
 */
export async function readWireguard(
  runner: Runner,
  names: ReadonlySet<string>,
  configs = false,
): Promise<WgRead> {
  if (names.size === 0) return { live: [] };
  const stdout = runner.wireguard
    ? await dumpOver(runner.wireguard, names)
    : (await Promise.all([...names].map((n) => dumpOf(runner, n)))).join("");
  const live = parseWgDump(stdout, names);
  return configs ? { live, configs: configsOfWgDump(stdout, names) } : { live };
}

/** What `wg show NAME dump` says of a name that is no WireGuard interface here. */
const NOT_WIREGUARD =
  /Unable to access interface: (No such device|Protocol not supported|Operation not supported)/;

/**
 * `wg show NAME dump`, its lines headed by the name as `wg show all dump` prints them; empty
 * where the name is no WireGuard interface. Spooled: at 10,000 peers the dump is megabytes,
 * which through a pipe would wait on netpol whenever it is busy (validating a policy, collecting
 * garbage) instead of being written.
 */
async function dumpOf(runner: Runner, name: string): Promise<string> {
  try {
    const { stdout } = await runner.run("wg", ["show", name, "dump"], {
      step: "reading WireGuard",
      spool: true,
    });
    return stdout === "" ? "" : `${name}\t${stdout.replaceAll("\n", `\n${name}\t`)}\n`;
  } catch (err) {
    if (err instanceof NetpolError && NOT_WIREGUARD.test(err.details.stderr ?? "")) return "";
    throw err;
  }
}

/** The named interfaces' lines as `wg show all dump` prints them, asked of their sockets. */
async function dumpOver(control: WireguardControl, names: ReadonlySet<string>): Promise<string> {
  const devices = await Promise.all(
    [...names].map(async (n) => [n, await control.get(n)] as const),
  );
  return devices.flatMap(([name, d]) => (d ? deviceDumpLines(name, d) : [])).join("\n");
}

/**
 * Creates a WireGuard interface: in the kernel where it has WireGuard, else with wireguard-go
 * (which daemonizes and exits when its interface is deleted).
 */
export async function createWireguardLink(
  runner: Runner,
  name: string,
  step: string,
): Promise<void> {
  try {
    await runner.run("ip", ["link", "add", "name", name, "type", "wireguard"], { step });
  } catch (err) {
    if (!(err instanceof NetpolError) || !/Unknown device type|not supported/i.test(err.message))
      throw err;
    await runner.run("wireguard-go", [name], { step }).catch((failed: unknown) => {
      throw wireguardGoFailed(failed, name, step);
    });
  }
}

/** The box wireguard-go draws on stderr ("Running wireguard-go is not required..."). */
const BANNER_LINE = /^[\u250c\u2502\u2514]/;

/**
 * wireguard-go's own error, without the banner it prints first (which said nothing else), and
 * what to do about the one a namespace cannot see: its control sockets are machine-wide.
 */
function wireguardGoFailed(err: unknown, name: string, step: string): unknown {
  if (!(err instanceof NetpolError) || err.code !== "NETPOL_E_TOOL_FAILED") return err;
  const said = (err.details.stderr ?? "")
    .split("\n")
    .filter((l) => l.trim() !== "" && !BANNER_LINE.test(l))
    .join("; ");
  const inUse = /unix socket in use/.test(said)
    ? `; another WireGuard interface named ${name} runs on this machine (wireguard-go's control sockets, /var/run/wireguard/${name}.sock, are shared by every namespace): give this one another name (the tunnel member's \`interface:\`)`
    : "";
  return new NetpolError(
    "NETPOL_E_TOOL_FAILED",
    `\`wireguard-go ${name}\` failed during ${step}: ${said || "no message"}${inUse}`,
    [],
    { cause: err, details: { ...err.details, stderr: said } },
  );
}

/** `wg set … endpoint NAME:PORT`: wg looks the name up again (a provider's server that moved). */
export async function resolveEndpointAgain(
  runner: Runner,
  device: string,
  peer: { readonly publicKey: string; readonly endpoint: string },
): Promise<void> {
  await runner.run("wg", ["set", device, "peer", peer.publicKey, "endpoint", peer.endpoint], {
    step: "health",
  });
}

/**
 * What an apply knows of the write before it makes it: the interface as its plan read it, and
 * the config as data. With both, the write over the control socket is computed from them alone:
 * at 10,000 peers, reading the interface again and parsing the config's text cost a hundred
 * times the `set`.
 */
export interface KnownWrite {
  readonly now: WgLive;
  readonly config: WgConfig;
}

/**
 * `wg syncconf` changes only what differs, so live sessions of untouched peers survive. The
 * config holds the private key: it goes through a 0600 file in netpol's state directory, never
 * argv nor the shared temp directory. Over a control socket only the peers that differ are sent,
 * from `known` where the caller has it (see socketWrite).
 */
export async function syncWireguard(
  runner: Runner,
  name: string,
  config: string | (() => string),
  secretDir: string,
  step: string,
  known?: KnownWrite,
): Promise<void> {
  const text = typeof config === "string" ? () => config : config;
  const control = runner.wireguard;
  const lines = control ? await socketWrite(control, name, text, known) : undefined;
  // Over the socket, only what differs; without one (or with a name to look up), `wg syncconf`.
  if (control && lines) {
    if (lines.length > 0) await control.set(name, lines);
    return;
  }
  await withSecretFile(secretDir, text(), (file) =>
    runner.run("wg", ["syncconf", name, file], { step }),
  );
}

/**
 * The `set=1` lines for the interface, or undefined where `wg syncconf` must do it (no socket,
 * an endpoint given as a name). A `set` answered `errno=0` is in force as sent: wireguard-go
 * applies each line or fails the operation.
 */
async function socketWrite(
  control: WireguardControl,
  name: string,
  text: () => string,
  known: KnownWrite | undefined,
): Promise<string[] | undefined> {
  if (known) return syncLines(known.now, known.config);
  const now = await control.get(name);
  return now ? syncLines(now, parseWgConfig(text())) : undefined;
}

/** Whether a write of `config` goes over a control socket, known without asking: see socketWrite. */
export const overSocket = (runner: Runner, config: Parameters<typeof addressedEndpoints>[0]) =>
  runner.wireguard !== undefined && addressedEndpoints(config);
