import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPair } from "../../src/system/keys.js";
import { createRunner } from "../../src/system/runner.js";
import { readWireguard, syncWireguard } from "../../src/system/wireguard.js";
import {
  parseUapiGet,
  parseWgConfig,
  syncLines,
  UapiClient,
  type UapiDevice,
} from "../../src/system/wireguard-uapi.js";
import { describeLive } from "../support/layers.js";
import {
  createNetns,
  type Netns,
  startWireguardGo,
  uniqueSuffix,
  type WireguardGo,
} from "../support/netns.js";

const hexOf = (b64: string) => Buffer.from(b64, "base64").toString("hex");
const me = generateKeyPair();
const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];

const config = (peers: string) =>
  `[Interface]\nPrivateKey = ${me.privateKey}\nListenPort = 51998\n${peers}`;
const peer = (key: string, allowed: string, extra = "") =>
  `\n# site x\n[Peer]\nPublicKey = ${key}\nAllowedIPs = ${allowed}\n${extra}`;

describe("WireGuard's control protocol", () => {
  it("reads a get=1 answer into the interface and its peers, keys in base64", () => {
    const device = parseUapiGet([
      `private_key=${hexOf(me.privateKey)}`,
      "listen_port=51998",
      `public_key=${hexOf(a.publicKey)}`,
      `preshared_key=${"0".repeat(64)}`,
      "endpoint=192.0.2.1:51820",
      "last_handshake_time_sec=1700000000",
      "last_handshake_time_nsec=0",
      "tx_bytes=10",
      "rx_bytes=20",
      "persistent_keepalive_interval=25",
      "allowed_ip=10.100.0.2/32",
      "allowed_ip=192.168.7.0/24",
      "protocol_version=1",
    ]);
    expect(device).toEqual({
      privateKey: me.privateKey,
      listenPort: 51998,
      fwmark: 0,
      peers: [
        {
          publicKey: a.publicKey,
          presharedKey: undefined,
          endpoint: "192.0.2.1:51820",
          allowedIps: ["10.100.0.2/32", "192.168.7.0/24"],
          latestHandshake: 1700000000,
          rxBytes: 20,
          txBytes: 10,
          keepalive: 25,
        },
      ],
    });
  });

  it("sends only the peers that differ: a new one, a changed one, one to remove", () => {
    const live = (publicKey: string, allowedIps: string[], keepalive = 0) => ({
      publicKey,
      presharedKey: undefined,
      endpoint: undefined,
      allowedIps,
      latestHandshake: 0,
      rxBytes: 0,
      txBytes: 0,
      keepalive,
    });
    const now: UapiDevice = {
      privateKey: me.privateKey,
      listenPort: 51998,
      fwmark: 0,
      peers: [live(a.publicKey, ["10.0.0.2/32"]), live(b.publicKey, ["10.0.0.3/32"], 25)],
    };
    const wanted = parseWgConfig(
      config(peer(a.publicKey, "10.0.0.2/32") + peer(b.publicKey, "10.0.0.3/32, 10.9.0.0/24")),
    );
    expect(syncLines(now, wanted)).toEqual([
      `public_key=${hexOf(b.publicKey)}`,
      "update_only=true",
      "persistent_keepalive_interval=0",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.3/32",
      "allowed_ip=10.9.0.0/24",
    ]);
    const swapped = parseWgConfig(
      config(peer(c.publicKey, "10.0.0.2/32", "Endpoint = 192.0.2.9:51820\n")),
    );
    expect(syncLines(now, swapped)).toEqual([
      `public_key=${hexOf(c.publicKey)}`,
      "endpoint=192.0.2.9:51820",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.2/32",
      `public_key=${hexOf(a.publicKey)}`,
      "remove=true",
      `public_key=${hexOf(b.publicKey)}`,
      "remove=true",
    ]);
    // A preshared key is not in what the plan read: `wg syncconf` sets it, not a bare set.
    const withPsk = parseWgConfig(
      config(peer(c.publicKey, "10.0.0.2/32", `PresharedKey = ${a.publicKey}\n`)),
    );
    expect(withPsk.peers[0]?.presharedKey).toBe(a.publicKey);
    expect(syncLines(now, withPsk)).toBeUndefined();
    // A name to look up is wg's job.
    expect(
      syncLines(
        now,
        parseWgConfig(
          config(peer(a.publicKey, "10.0.0.2/32", "Endpoint = vpn.example.org:51820\n")),
        ),
      ),
    ).toBeUndefined();
  });
});

describeLive("WireGuard over wireguard-go's control socket", () => {
  let ns: Netns;
  let wg: WireguardGo;
  let dir: string;
  const name = `wu${uniqueSuffix()}`;
  const uapi = new UapiClient();

  beforeAll(async () => {
    ns = await createNetns("npwu");
    wg = await startWireguardGo(ns, name);
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-uapi-"));
  });
  afterAll(async () => {
    uapi.close();
    await wg?.stop();
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reads what wg reads, and syncs to what wg syncconf would leave, without a process", async () => {
    const plain = createRunner(ns.name);
    const first = config(
      peer(a.publicKey, "10.0.0.2/32", "PersistentKeepalive = 25\n") +
        peer(b.publicKey, "10.0.0.3/32, 192.168.9.0/24", "Endpoint = 192.0.2.7:51820\n"),
    );
    await syncWireguard(plain, name, first, dir, "test");
    const names = new Set([name]);
    const overSocket = { ...plain, wireguard: uapi };
    const before = plain.spawned;
    const read = await readWireguard(overSocket, names, true);
    expect(plain.spawned).toBe(before);
    const byWg = await readWireguard(plain, names, true);
    // The same peers (wg sorts them by handshake; the socket answers in its own order).
    const sorted = (live: typeof read.live) =>
      live.map((d) => ({
        ...d,
        peers: [...d.peers].sort((x, y) => x.publicKey.localeCompare(y.publicKey)),
      }));
    expect(sorted(read.live)).toEqual(sorted(byWg.live));
    const peersOf = (configs: ReadonlyMap<string, string> | undefined) =>
      [...parseWgConfig(configs?.get(name) ?? "").peers].sort((x, y) =>
        x.publicKey.localeCompare(y.publicKey),
      );
    expect(peersOf(read.configs)).toEqual(peersOf(byWg.configs));
    expect(parseWgConfig(read.configs?.get(name) ?? "").privateKey).toBe(me.privateKey);

    const second = config(
      peer(c.publicKey, "10.0.0.2/32") +
        peer(b.publicKey, "10.0.0.3/32", "Endpoint = 192.0.2.8:51820\nPersistentKeepalive = 10\n"),
    );
    await syncWireguard(overSocket, name, second, dir, "test");
    expect(plain.spawned).toBe(before + 1);
    const shown = await plain.run("wg", ["showconf", name]);
    const parsed = parseWgConfig(shown.stdout);
    expect(parsed.privateKey).toBe(me.privateKey);
    expect(parsed.listenPort).toBe(51998);
    expect(
      parsed.peers.map((p) => [p.publicKey, p.allowedIps, p.endpoint, p.keepalive]).sort(),
    ).toEqual(
      [
        [b.publicKey, ["10.0.0.3/32"], "192.0.2.8:51820", 10],
        [c.publicKey, ["10.0.0.2/32"], undefined, undefined],
      ].sort(),
    );
  });
});
