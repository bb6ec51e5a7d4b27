import { existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import path from "node:path";
import { NetpolError } from "../errors.js";
import { sameSet } from "../plan/keys.js";
import { publicKeyOf } from "./keys.js";
import { lineSplitter } from "./session.js";

/**
 * WireGuard's userspace control protocol on the socket wireguard-go serves for each interface
 * (`/var/run/wireguard/NAME.sock`): what `wg` itself speaks, without a process per command.
 * A `get=1` lists the interface and its peers as `key=value` lines, a `set=1` changes them,
 * and each answer ends with `errno=N` and an empty line. wireguard-go takes one operation after
 * another on one connection, so a resident process keeps one open per interface. The sockets
 * are in the file system, the same from every namespace: interface names are unique on the
 * machine, and the caller checks that a name is a link of its own namespace.
 */

export const UAPI_DIR = "/var/run/wireguard";

/** One connection to one interface's socket; operations take turns. */
class Connection {
  private readonly socket: Socket;
  private queue: Promise<unknown> = Promise.resolve();
  private answer:
    | { lines: string[]; done: (lines: string[]) => void; failed: (e: Error) => void }
    | undefined;
  readonly closed: Promise<void>;

  constructor(file: string) {
    this.socket = connect(file);
    this.socket.setEncoding("utf8");
    this.socket.on(
      "data",
      lineSplitter((line) => {
        const a = this.answer;
        if (!a) return;
        if (line !== "") {
          a.lines.push(line);
          return;
        }
        this.answer = undefined;
        a.done(a.lines);
      }),
    );
    this.closed = new Promise((settle) => {
      this.socket.on("close", () => {
        const a = this.answer;
        this.answer = undefined;
        a?.failed(new Error(error ?? "the socket closed before its answer"));
        settle();
      });
    });
    let error: string | undefined;
    this.socket.on("error", (e) => {
      error = e.message;
    });
  }

  /** Sends one operation; resolves with its answer's lines, `errno=N` last. */
  operation(text: string): Promise<string[]> {
    const turn = this.queue.then(
      () =>
        new Promise<string[]>((resolve, reject) => {
          if (this.socket.destroyed) {
            reject(new Error("the socket is closed"));
            return;
          }
          this.answer = { lines: [], done: resolve, failed: reject };
          this.socket.write(text);
        }),
    );
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What `get=1` reports, keys in base64 as `wg` prints them. */
export interface UapiDevice {
  readonly privateKey: string | undefined;
  readonly listenPort: number;
  readonly fwmark: number;
  readonly peers: readonly UapiPeer[];
}

export interface UapiPeer {
  readonly publicKey: string;
  readonly presharedKey: string | undefined;
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
  readonly latestHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly keepalive: number;
}

const base64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
const ZERO_KEY = "0".repeat(64);

/** A `get=1` answer, read into the interface and its peers. */
export function parseUapiGet(lines: readonly string[]): UapiDevice {
  let privateKey: string | undefined;
  let listenPort = 0;
  let fwmark = 0;
  const peers: UapiPeer[] = [];
  let peer: { -readonly [K in keyof UapiPeer]: UapiPeer[K] } | undefined;
  for (const line of lines) {
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "public_key") {
      peer = {
        publicKey: base64(value),
        presharedKey: undefined,
        endpoint: undefined,
        allowedIps: [],
        latestHandshake: 0,
        rxBytes: 0,
        txBytes: 0,
        keepalive: 0,
      };
      peers.push(peer);
    } else if (!peer) {
      if (key === "private_key") privateKey = value === ZERO_KEY ? undefined : base64(value);
      else if (key === "listen_port") listenPort = Number(value);
      else if (key === "fwmark") fwmark = Number(value);
    } else if (key === "preshared_key") {
      peer.presharedKey = value === ZERO_KEY ? undefined : base64(value);
    } else if (key === "endpoint") peer.endpoint = value;
    else if (key === "allowed_ip") (peer.allowedIps as string[]).push(value);
    else if (key === "last_handshake_time_sec") peer.latestHandshake = Number(value);
    else if (key === "rx_bytes") peer.rxBytes = Number(value);
    else if (key === "tx_bytes") peer.txBytes = Number(value);
    else if (key === "persistent_keepalive_interval") peer.keepalive = Number(value);
  }
  return { privateKey, listenPort, fwmark, peers };
}

/**
 * The interface's lines of `wg show all dump`, as wg prints them: the format the WireGuard
 * readers parse, whichever way the state was asked for.
 */
export function deviceDumpLines(name: string, d: UapiDevice): string[] {
  const or = (v: string | undefined) => v ?? "(none)";
  const head = [
    name,
    or(d.privateKey),
    d.privateKey ? publicKeyOf(d.privateKey) : "(none)",
    String(d.listenPort),
    d.fwmark ? `0x${d.fwmark.toString(16)}` : "off",
  ];
  return [
    head.join("\t"),
    ...d.peers.map((p) =>
      [
        name,
        p.publicKey,
        or(p.presharedKey),
        or(p.endpoint),
        p.allowedIps.length > 0 ? p.allowedIps.join(",") : "(none)",
        String(p.latestHandshake),
        String(p.rxBytes),
        String(p.txBytes),
        p.keepalive ? String(p.keepalive) : "off",
      ].join("\t"),
    ),
  ];
}

/** Talks to WireGuard interfaces without a process: wireguard-go's sockets, or a fake's. */
export interface WireguardControl {
  /** The interface, or undefined when it has no control socket (not there, not userspace). */
  get(name: string): Promise<UapiDevice | undefined>;
  set(name: string, lines: readonly string[]): Promise<void>;
}

/** A `wg` config as netpol renders it (render/wireguard.ts), read back for a `set=1`. */
export interface WgConfig {
  readonly privateKey: string;
  readonly listenPort: number | undefined;
  readonly peers: readonly {
    readonly publicKey: string;
    readonly allowedIps: readonly string[];
    readonly endpoint: string | undefined;
    readonly keepalive: number | undefined;
    /** Base64; a peer with one is written by `wg syncconf` (see syncLines). */
    readonly presharedKey?: string;
  }[];
}

export function parseWgConfig(text: string): WgConfig {
  let privateKey = "";
  let listenPort: number | undefined;
  const peers: {
    publicKey: string;
    allowedIps: string[];
    endpoint?: string;
    keepalive?: number;
    presharedKey?: string;
  }[] = [];
  let peer: (typeof peers)[number] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "[Peer]") {
      peer = { publicKey: "", allowedIps: [] };
      peers.push(peer);
      continue;
    }
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value = ""] = m;
    if (!peer) {
      if (key === "PrivateKey") privateKey = value;
      else if (key === "ListenPort") listenPort = Number(value);
    } else if (key === "PublicKey") peer.publicKey = value;
    else if (key === "AllowedIPs") peer.allowedIps = value.split(",").map((a) => a.trim());
    else if (key === "Endpoint") peer.endpoint = value;
    else if (key === "PersistentKeepalive") peer.keepalive = Number(value);
    else if (key === "PresharedKey") peer.presharedKey = value;
  }
  return {
    privateKey,
    listenPort,
    peers: peers.map((p) => ({
      publicKey: p.publicKey,
      allowedIps: p.allowedIps.filter((a) => a !== ""),
      endpoint: p.endpoint,
      keepalive: p.keepalive,
      ...(p.presharedKey !== undefined ? { presharedKey: p.presharedKey } : {}),
    })),
  };
}

const hex = (key: string) => Buffer.from(key, "base64").toString("hex");
/** Whether every endpoint is an address: a name needs `wg` to look it up. */
export const addressedEndpoints = (config: {
  readonly peers: readonly { readonly endpoint: string | undefined }[];
}): boolean => config.peers.every((p) => p.endpoint === undefined || /^(\d|\[)/.test(p.endpoint));

/**
 * The interface as syncLines compares it: a `get=1` answer, or what a plan read without the
 * private key (`wg show`'s public key instead).
 */
export type DeviceNow = Pick<UapiDevice, "listenPort"> & {
  /** Keepalive undefined or 0: off. */
  readonly peers: readonly (Pick<UapiPeer, "publicKey" | "allowedIps" | "endpoint"> & {
    readonly keepalive: number | undefined;
  })[];
} & ({ readonly privateKey: string | undefined } | { readonly publicKey: string });

/**
 * The `set=1` lines that bring the interface from `now` to `config`, naming only what differs,
 * so every other peer's session is left as it is (what `wg syncconf` does, without sending
 * the whole config: at 10,000 peers that is megabytes for wireguard-go to read). As the plan's
 * diff does, a keepalive the config does not give is off. Endpoints must be addresses here (a
 * name needs `wg` to look it up); undefined when one is not.
 */
export function syncLines(now: DeviceNow, config: WgConfig): string[] | undefined {
  if (!addressedEndpoints(config)) return undefined;
  // What the plan read carries no preshared keys to compare: a peer with one (a provider's)
  // goes through `wg syncconf`, which sets it; sent here without it, its handshakes would fail.
  if (config.peers.some((p) => p.presharedKey !== undefined)) return undefined;
  const lines: string[] = [];
  const keyDiffers =
    "publicKey" in now
      ? now.publicKey !== publicKeyOf(config.privateKey)
      : now.privateKey !== config.privateKey;
  if (keyDiffers) lines.push(`private_key=${hex(config.privateKey)}`);
  if (config.listenPort !== undefined && now.listenPort !== config.listenPort)
    lines.push(`listen_port=${config.listenPort}`);
  const current = new Map(now.peers.map((p) => [p.publicKey, p]));
  for (const p of config.peers) {
    const have = current.get(p.publicKey);
    const keepalive = p.keepalive ?? 0;
    const allowed = !have || !sameSet(have.allowedIps, p.allowedIps);
    const endpoint = p.endpoint !== undefined && have?.endpoint !== p.endpoint;
    const alive = have ? (have.keepalive ?? 0) !== keepalive : keepalive !== 0;
    if (have && !allowed && !endpoint && !alive) continue;
    lines.push(`public_key=${hex(p.publicKey)}`);
    if (have) lines.push("update_only=true");
    if (endpoint) lines.push(`endpoint=${p.endpoint}`);
    if (alive) lines.push(`persistent_keepalive_interval=${keepalive}`);
    if (allowed) {
      lines.push("replace_allowed_ips=true");
      for (const a of p.allowedIps) lines.push(`allowed_ip=${a}`);
    }
  }
  const named = new Set(config.peers.map((p) => p.publicKey));
  for (const p of now.peers) {
    if (!named.has(p.publicKey)) lines.push(`public_key=${hex(p.publicKey)}`, "remove=true");
  }
  return lines;
}

/** Open connections to wireguard-go's sockets, one per interface, reused across operations. */
export class UapiClient implements WireguardControl {
  private readonly connections = new Map<string, Connection>();

  constructor(private readonly dir: string = UAPI_DIR) {}

  /** The interface as `get=1` reports it; undefined when it has no socket. */
  async get(name: string): Promise<UapiDevice | undefined> {
    if (!existsSync(path.join(this.dir, `${name}.sock`))) return undefined;
    return parseUapiGet(await this.operation(name, "get=1\n\n"));
  }

  /** A `set=1` of these lines: all of them or, on an error, as far as wireguard-go got. */
  async set(name: string, lines: readonly string[]): Promise<void> {
    await this.operation(name, `set=1\n${lines.map((l) => `${l}\n`).join("")}\n`);
  }

  close(): void {
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }

  private async operation(name: string, text: string): Promise<string[]> {
    const file = path.join(this.dir, `${name}.sock`);
    let connection = this.connections.get(name);
    if (!connection) {
      const opened = new Connection(file);
      connection = opened;
      this.connections.set(name, opened);
      // A closed socket (the interface was deleted, wireguard-go restarted) is opened anew.
      void opened.closed.then(() => {
        if (this.connections.get(name) === opened) this.connections.delete(name);
      });
    }
    let answer: string[];
    try {
      answer = await connection.operation(text);
    } catch (err) {
      throw uapiFailed(name, err instanceof Error ? err.message : String(err));
    }
    const errno = Number(answer.at(-1)?.replace(/^errno=/, "") ?? Number.NaN);
    if (errno !== 0) throw uapiFailed(name, `errno=${errno}`);
    return answer.slice(0, -1);
  }
}

function uapiFailed(name: string, why: string): NetpolError {
  return new NetpolError(
    "NETPOL_E_TOOL_FAILED",
    `WireGuard interface ${name}: its control socket ${path.join(UAPI_DIR, `${name}.sock`)} failed (${why})`,
  );
}
