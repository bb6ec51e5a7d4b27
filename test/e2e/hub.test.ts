import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../../src/lab/probe.js";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import type { WgPeerLive } from "../../src/plan/live.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { parseWgDump } from "../../src/system/wireguard.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";

/**
 * A hub-and-spoke tunnel on real namespaces and wireguard-go: a hub and three spokes, each
 * spoke joined to the hub by a veth pair of its own and dialing the hub's public address.
 * A new key for one spoke must cost the hub one `wg syncconf` and leave the other spokes'
 * sessions (handshake, counters) as they were: issue 11's "changing one peer".
 *
 *   s1 ─┐ 198.51.100.0/30
 *   s2 ─┼─ hub (203.0.113.10 on lo, listening on 51820)
 *   s3 ─┘ 198.51.100.4/30, .8/30
 */

const SPOKES = ["s1", "s2", "s3"] as const;
type Spoke = (typeof SPOKES)[number];
const HUB_PUBLIC = "203.0.113.10";
const HUB_TUNNEL = "10.99.0.1";

/** The spoke's number: its veth pair, its tunnel address and its LAN. */
const nth = (spoke: Spoke) => SPOKES.indexOf(spoke) + 1;
/** The hub's and the spoke's ends of the spoke's /30 in 198.51.100.0/24. */
const linkAddr = (spoke: Spoke, end: "hub" | "spoke") =>
  `198.51.100.${4 * (nth(spoke) - 1) + (end === "hub" ? 1 : 2)}`;

const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

describeLive("a hub-and-spoke tunnel: one spoke's new key", () => {
  const suffix = uniqueSuffix();
  /** wireguard-go's names are machine-wide: every site's interface gets the suffix. */
  const ifname = (site: "hub" | Spoke) => `wg${site === "hub" ? "h" : nth(site)}${suffix}`;
  const ifnames = () => [ifname("hub"), ...SPOKES.map(ifname)];
  let dir = "";
  let hub: Netns | undefined;
  const spokes = new Map<Spoke, Netns>();
  const publicKeys = new Map<string, string>();
  /** The key file each site's member names; s2's changes. */
  const keyFiles = new Map<string, string>();

  const ns = (site: "hub" | Spoke): Netns => {
    const n = site === "hub" ? hub : spokes.get(site);
    if (n === undefined) throw new Error(`no namespace for ${site}`);
    return n;
  };

  const newKey = async (site: string, file: string) => {
    const pair = generateKeyPair();
    await writePrivateKey(path.join(dir, file), pair.privateKey);
    publicKeys.set(site, pair.publicKey);
    keyFiles.set(site, file);
  };

  const policy = () => {
    const member = (site: "hub" | Spoke) =>
      `      - { site: ${site}, interface: ${ifname(site)}, publicKey: ${publicKeys.get(site)}, privateKeyFile: ${keyFiles.get(site)}, ` +
      (site === "hub"
        ? `address: ${HUB_TUNNEL}/24, endpoint: "${HUB_PUBLIC}:51820" }`
        : `address: 10.99.0.${nth(site) + 1}/24, advertise: [lan] }`);
    return [
      "version: 1",
      "sites:",
      "  hub: {}",
      ...SPOKES.map(
        (s) =>
          `  ${s}: { interfaces: [{ name: lan0, kind: physical }], networks: [{ name: lan, cidr: 192.168.${nth(s)}.0/24, interface: lan0, address: 192.168.${nth(s)}.1 }] }`,
      ),
      "tunnels:",
      "  - name: wg0",
      "    topology: hub",
      "    hub: hub",
      "    keepalive: 5",
      "    members:",
      member("hub"),
      ...SPOKES.map(member),
      "",
    ].join("\n");
  };

  /** `netpol apply --json` of the current policy at one site; its plan's changes. */
  const apply = async (site: "hub" | Spoke) => {
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, policy(), { mode: 0o600 });
    const r = await netpol([
      ...["apply", file, "--site", site, "--netns", ns(site).name],
      ...["--state-dir", path.join(dir, "state"), "--key-dir", dir, "--json"],
    ]);
    if (r.exitCode !== 0) throw new Error(`netpol apply at ${site}: ${r.stderr}${r.stdout}`);
    return (JSON.parse(r.stdout) as { plan: { changes: unknown[] } }).plan.changes;
  };

  /** The hub's peers as `wg show IF dump` reads them, by public key. */
  const hubPeers = async (): Promise<Map<string, WgPeerLive>> => {
    const dev = ifname("hub");
    const { stdout } = await ns("hub").exec(["wg", "show", dev, "dump"]);
    // The per-interface dump lacks the `all dump`'s leading name column: put it back.
    const all = stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => `${dev}\t${l}`)
      .join("\n");
    const [wg] = parseWgDump(all, new Set([dev]));
    return new Map((wg?.peers ?? []).map((p) => [p.publicKey, p]));
  };
  const peerOf = (peers: Map<string, WgPeerLive>, spoke: Spoke) => {
    const peer = peers.get(publicKeys.get(spoke) ?? "");
    if (peer === undefined) throw new Error(`the hub has no peer for ${spoke}`);
    return peer;
  };

  /** One ping from a spoke to the hub's tunnel address; true when it was answered. */
  const pingHub = async (spoke: Spoke) =>
    (await ns(spoke).run(["ping", "-c", "1", "-W", "1", HUB_TUNNEL])).exitCode === 0;
  /** Pings until answered (the first packet may wait for a handshake). */
  const reachHub = (spoke: Spoke) =>
    eventually(
      () => pingHub(spoke),
      (ok) => ok,
    );

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-hub-"));
    hub = await createNetns("h");
    for (const s of SPOKES) spokes.set(s, await createNetns(s));
    await hub.exec(["ip", "address", "add", `${HUB_PUBLIC}/32`, "dev", "lo"]);
    for (const s of SPOKES) {
      const spoke = ns(s);
      await hub.exec(
        ["ip", "-batch", "-"],
        [
          `link add up${nth(s)} type veth peer name wan netns ${spoke.name}`,
          `link set up${nth(s)} up`,
          `address add ${linkAddr(s, "hub")}/30 dev up${nth(s)}`,
          "",
        ].join("\n"),
      );
      await spoke.exec(
        ["ip", "-batch", "-"],
        [
          "link set wan up",
          `address add ${linkAddr(s, "spoke")}/30 dev wan`,
          `route add ${HUB_PUBLIC}/32 via ${linkAddr(s, "hub")}`,
          // The LAN the spoke advertises: a veth, as in the lab (no dummy devices here).
          "link add lan0 type veth peer name lan1",
          "link set lan0 up",
          "",
        ].join("\n"),
      );
    }
    for (const site of ["hub", ...SPOKES]) await newKey(site, `${site}.key`);
    await apply("hub");
    await Promise.all(SPOKES.map((s) => apply(s)));
    for (const s of SPOKES) expect(await reachHub(s), `${s} reaches the hub`).toBe(true);
  }, 60_000);

  afterAll(async () => {
    // netpol starts wireguard-go daemonized: found by its interface name, killed by PID.
    await stopWireguardGoByName(ifnames());
    for (const n of [hub, ...spokes.values()]) await n?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("gives the hub one peer per spoke, each with a session that carried traffic", async () => {
    const peers = await hubPeers();
    expect(peers.size).toBe(3);
    for (const s of SPOKES) {
      const peer = peerOf(peers, s);
      expect(peer.latestHandshake, s).toBeGreaterThan(0);
      expect(peer.rxBytes, s).toBeGreaterThan(0);
      expect([...peer.allowedIps].sort(), s).toEqual([
        `10.99.0.${nth(s) + 1}/32`,
        `192.168.${nth(s)}.0/24`,
      ]);
    }
  });

  it("syncs a new key for one spoke in one change, leaving the other spokes' sessions alone", async () => {
    const before = await hubPeers();
    const oldKey = publicKeys.get("s2") ?? "";
    await newKey("s2", "s2-new.key");

    const changes = await apply("hub");
    expect(changes).toEqual([
      expect.objectContaining({
        kind: "wireguard",
        op: "sync",
        what: expect.stringMatching(new RegExp(`^wireguard ${ifname("hub")}:`)),
      }),
    ]);

    const after = await hubPeers();
    expect(after.has(oldKey)).toBe(false);
    expect(peerOf(after, "s2").latestHandshake).toBe(0);
    for (const s of ["s1", "s3"] as const) {
      const was = peerOf(before, s);
      const now = peerOf(after, s);
      expect(now.latestHandshake, s).toBe(was.latestHandshake);
      expect(now.rxBytes, s).toBeGreaterThanOrEqual(was.rxBytes);
      expect(now.txBytes, s).toBeGreaterThanOrEqual(was.txBytes);
      expect(now.endpoint, s).toBe(was.endpoint);
    }

    // The kept sessions carry traffic at once: answered on the first try, with no new handshake.
    for (const s of ["s1", "s3"] as const) expect(await pingHub(s), s).toBe(true);
    const later = await hubPeers();
    for (const s of ["s1", "s3"] as const) {
      expect(peerOf(later, s).latestHandshake, s).toBe(peerOf(before, s).latestHandshake);
      expect(peerOf(later, s).rxBytes, s).toBeGreaterThan(peerOf(after, s).rxBytes);
    }
  });

  it("lets the spoke with the new key back in once it applies, still leaving the others alone", async () => {
    const before = await hubPeers();
    expect(await apply("s2")).toEqual([expect.objectContaining({ kind: "wireguard", op: "sync" })]);
    expect(await reachHub("s2")).toBe(true);
    const after = await hubPeers();
    expect(peerOf(after, "s2").latestHandshake).toBeGreaterThan(0);
    expect(peerOf(after, "s2").rxBytes).toBeGreaterThan(0);
    for (const s of ["s1", "s3"] as const)
      expect(peerOf(after, s).latestHandshake, s).toBe(peerOf(before, s).latestHandshake);
  });
});
