import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { compileSite } from "../../src/compile/compile.js";
import type { SiteState } from "../../src/compile/desired.js";
import type { SiteIntent } from "../../src/policy/intent.js";
import { parsePolicy } from "../../src/policy/load.js";
import { renderSiteFiles } from "../../src/render/site-files.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { readPrivateKeys } from "../../src/system/private-keys.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, startWireguardGo, uniqueSuffix } from "../support/netns.js";

/**
 * The real tools as oracles for what `render` writes: every file is loaded by the tool it is
 * for, inside a fresh namespace, and read back. Keys are real (made here, never checked in).
 */

const root = fileURLToPath(new URL("../../", import.meta.url));
const policyFiles = readdirSync(path.join(root, "policies"))
  .filter((f) => f.endsWith(".yaml"))
  .sort();

/**
 * Not an example policy: the examples have no IPv6 egress, so nothing would reach ip6.batch.
 * This one sends a dual-stack VLAN out through an external device, failing closed.
 */
const DUAL_STACK = `
version: 1
sites:
  home:
    wan: eth1
    interfaces:
      - { name: eth0, kind: physical }
      - { name: eth1, kind: physical }
      - { name: eth0.6, kind: vlan, parent: eth0, vlanId: 6 }
    networks:
      - { name: files, cidr: 192.168.6.0/24, interface: eth0.6, address: 192.168.6.1 }
      - { name: files6, cidr: "2001:db8:6::/64", interface: eth0.6, address: "2001:db8:6::1" }
    external:
      - { name: tun-hma }
    egress:
      - name: vpn
        from: [files, files6]
        via: tun-hma
        except: [192.168.0.0/16, "fd00::/8"]
        masquerade: true
        table: 3
        priority: 200
`;

const sources = [
  ...policyFiles.map((file) => ({
    file,
    text: readFileSync(path.join(root, "policies", file), "utf8"),
  })),
  { file: "inline dual-stack egress", text: DUAL_STACK },
];

const cases = sources.flatMap(({ file, text }) =>
  parsePolicy(text, file).intent.sites.map((s) => ({ file, text, site: s.name })),
);

// biome-ignore lint/suspicious/noExplicitAny: the policy document is edited as plain YAML data
type Doc = any;

interface Rendered {
  dir: string;
  outDir: string;
  state: SiteState;
  site: SiteIntent;
  files: Map<string, string>;
  /** Tunnel names as rewritten for this run (wireguard-go socket names are machine-wide). */
  tunnelNames: string[];
}

/**
 * A copy of the policy with real keys and machine-unique tunnel names, rendered for one site.
 * The keys live in a temp dir next to the copy, mode 0600, and are read back the way the CLI
 * reads them (so a key that does not match its publicKey would be refused here too).
 */
async function renderWithRealKeys(text: string, siteName: string, suffix: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-oracle-"));
  const doc: Doc = parseYaml(text);
  const renames = new Map<string, string>();
  (doc.tunnels ?? []).forEach((t: Doc, i: number) => {
    const name = `t${i}${suffix}`;
    renames.set(t.name, name);
    t.name = name;
    for (const m of t.members) {
      const { privateKey, publicKey } = generateKeyPair();
      m.publicKey = publicKey;
      m.__key = privateKey;
    }
  });
  for (const site of Object.values(doc.sites ?? {}) as Doc[]) {
    for (const e of site.egress ?? []) e.via = renames.get(e.via) ?? e.via;
  }
  for (const t of doc.tunnels ?? []) {
    for (const m of t.members) {
      const file = path.join(dir, m.privateKeyFile);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writePrivateKey(file, m.__key);
      delete m.__key;
    }
  }
  const policyPath = path.join(dir, "policy.yaml");
  await writeFile(policyPath, stringifyYaml(doc));
  const { intent } = parsePolicy(await readFile(policyPath, "utf8"), policyPath);
  const state = compileSite(intent, siteName);
  const files = renderSiteFiles(state, await readPrivateKeys(state, dir));
  const outDir = path.join(dir, "out");
  for (const [name, content] of files) {
    const target = path.join(outDir, name);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    await writeFile(target, content, { mode: 0o600 });
  }
  const site = intent.sites.find((s) => s.name === siteName);
  if (!site) throw new Error(`no site ${siteName}`);
  return { dir, outDir, state, site, files, tunnelNames: [...renames.values()] } as Rendered;
}

// ---- reading back ip(8) state in a comparable form ----------------------------------------

const words = (line: string) => line.trim().split(/\s+/);
const valueAfter = (w: string[], key: string) => {
  const i = w.indexOf(key);
  return i >= 0 ? w[i + 1] : undefined;
};
const defaultOf = (v6: boolean) => (v6 ? "::/0" : "0.0.0.0/0");

/** `rule add priority P from F [to T] [fwmark M] lookup L protocol N` → a comparable key. */
function renderedRule(line: string) {
  const w = words(line);
  const from = valueAfter(w, "from") ?? "";
  return {
    priority: Number(valueAfter(w, "priority")),
    key: [
      valueAfter(w, "priority"),
      from,
      valueAfter(w, "to") ?? "-",
      valueAfter(w, "fwmark") ?? "-",
      valueAfter(w, "lookup"),
    ].join(" "),
  };
}

interface LiveRule {
  priority: number;
  src: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  fwmark?: string;
  fwmask?: string;
  table: string;
  protocol?: string;
}

function liveRuleKey(r: LiveRule, v6: boolean): string {
  const from = r.src === "all" ? defaultOf(v6) : `${r.src}/${r.srclen ?? (v6 ? 128 : 32)}`;
  const to = r.dst === undefined ? "-" : `${r.dst}/${r.dstlen ?? (v6 ? 128 : 32)}`;
  const mark = r.fwmark === undefined ? "-" : `${r.fwmark}${r.fwmask ? `/${r.fwmask}` : ""}`;
  return [String(r.priority), from, to, mark, r.table].join(" ");
}

/** `route add table T [unreachable] DST [via G] dev D [metric M] proto N` → a comparable key. */
function renderedRoute(line: string): string {
  const w = words(line);
  const table = valueAfter(w, "table") ?? "main";
  const unreachable = w.includes("unreachable");
  const dst = unreachable ? (valueAfter(w, "unreachable") ?? "") : (w[4] ?? "");
  return [
    table,
    unreachable ? "unreachable" : "unicast",
    dst,
    valueAfter(w, "via") ?? "-",
    valueAfter(w, "dev") ?? "-",
    valueAfter(w, "metric") ?? "-",
  ].join(" ");
}

interface LiveRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  metric?: number;
}

function liveRouteKey(r: LiveRoute, v6: boolean): string {
  const type = r.type ?? "unicast";
  const dst =
    r.dst === "default" ? defaultOf(v6) : r.dst.includes("/") ? r.dst : `${r.dst}/${v6 ? 128 : 32}`;
  return [
    r.table ?? "main",
    type,
    dst,
    r.gateway ?? "-",
    // IPv6 lists unreachable routes on lo; they have no device of their own.
    type === "unreachable" ? "-" : (r.dev ?? "-"),
    // The kernel's default metric (0 for IPv4, 1024 for IPv6) means "none given".
    r.metric === undefined || r.metric === (v6 ? 1024 : 0) ? "-" : String(r.metric),
  ].join(" ");
}

/** `ip -batch` cannot make VLANs or in-kernel WireGuard here: the test makes stand-ins instead. */
const needsStandIn = (line: string) => /^link add\b.*\btype (vlan|wireguard)\b/.test(line);

// ---- nftables ---------------------------------------------------------------------------

const NFT_PRIORITIES: Record<string, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

interface NftChainInfo {
  name: string;
  type?: string;
  hook?: string;
  prio?: number;
  rules: number;
}

async function listNetpolTable(ns: Netns): Promise<NftChainInfo[]> {
  const out = await ns.exec(["nft", "-j", "list", "table", "inet", "netpol"]);
  const items: Record<string, Doc>[] = JSON.parse(out.stdout).nftables;
  const chains = items.flatMap((i) => (i.chain ? [i.chain] : []));
  const rules = items.flatMap((i) => (i.rule ? [i.rule] : []));
  return chains.map((c) => ({
    name: c.name,
    type: c.type,
    hook: c.hook,
    prio: c.prio,
    rules: rules.filter((r) => r.chain === c.name).length,
  }));
}

// ---- wg show dump -------------------------------------------------------------------------

interface RenderedPeer {
  publicKey: string;
  allowedIps: string[];
  endpoint?: string;
  keepalive?: string;
}

function parseWgConf(text: string) {
  const peers: RenderedPeer[] = [];
  let listenPort: string | undefined;
  let current: RenderedPeer | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "[Peer]") {
      current = { publicKey: "", allowedIps: [] };
      peers.push(current);
      continue;
    }
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value = ""] = m;
    if (key === "ListenPort") listenPort = value;
    if (!current) continue;
    if (key === "PublicKey") current.publicKey = value;
    if (key === "AllowedIPs") current.allowedIps = value.split(/\s*,\s*/).sort();
    if (key === "Endpoint") current.endpoint = value;
    if (key === "PersistentKeepalive") current.keepalive = value;
  }
  return { listenPort, peers };
}

// ---- the tests ----------------------------------------------------------------------------

describeLive("rendered files against the real tools, each in a fresh namespace", () => {
  it("has example policies with sites", () => {
    expect(cases.length).toBeGreaterThanOrEqual(4);
  });

  for (const c of cases) {
    describe(`${c.file}, site ${c.site}`, () => {
      const suffix = uniqueSuffix();
      const namespaces: Netns[] = [];
      let r: Rendered;

      const freshNetns = async (kind: string) => {
        const ns = await createNetns(`netpol-${kind}`);
        namespaces.push(ns);
        return ns;
      };

      beforeAll(async () => {
        r = await renderWithRealKeys(c.text, c.site, suffix);
      });

      afterAll(async () => {
        const problems: unknown[] = [];
        for (const ns of namespaces) {
          await ns.destroy().catch((err: unknown) => problems.push(err));
        }
        if (r) await rm(r.dir, { recursive: true, force: true });
        if (problems.length > 0) throw problems[0];
      });

      it("nftables.nft passes nft -c, loads, lists the chains, and replaces itself", async () => {
        const ns = await freshNetns("nft");
        const file = path.join(r.outDir, "nftables.nft");
        // A table netpol does not own: it must survive every apply.
        await ns.exec(["nft", "add", "table", "inet", "someone_else"]);
        await ns.exec(["nft", "add", "chain", "inet", "someone_else", "keep"]);

        await ns.exec(["nft", "-c", "-f", file]);
        await ns.exec(["nft", "-f", file]);
        const expected = r.state.nftChains.map((ch) => ({
          name: ch.name,
          type: ch.base?.type,
          hook: ch.base?.hook,
          prio: ch.base
            ? (NFT_PRIORITIES[ch.base.priority] ?? Number(ch.base.priority))
            : undefined,
          rules: ch.rules.length,
        }));
        expect(r.state.nftChains.length).toBeGreaterThan(0);
        const first = await listNetpolTable(ns);
        expect(first).toEqual(expected);
        const text = (await ns.exec(["nft", "list", "table", "inet", "netpol"])).stdout;

        await ns.exec(["nft", "-f", file]);
        expect(await listNetpolTable(ns)).toEqual(expected);
        expect((await ns.exec(["nft", "list", "table", "inet", "netpol"])).stdout).toBe(text);
        const tables = (await ns.exec(["nft", "list", "tables"])).stdout;
        expect(tables).toContain("table inet someone_else");
        expect(tables.match(/table inet netpol/g)).toHaveLength(1);
      });

      it("ip.batch applies with ip -batch; rules and routes read back with protocol 77", async () => {
        const ns = await freshNetns("ip");
        // Stand-ins for the devices the policy expects: veths for physical interfaces and
        // VLANs (no 802.1q here), tun devices for external egress, wireguard-go for tunnels.
        let peer = 0;
        for (const i of r.site.interfaces) {
          if (i.kind === "bridge") continue; // the batch makes bridges itself
          const other = `np${peer++}`;
          await ns.exec(["ip", "link", "add", i.name, "type", "veth", "peer", "name", other]);
          await ns.exec(["ip", "link", "set", "dev", i.name, "up"]);
          await ns.exec(["ip", "link", "set", "dev", other, "up"]);
        }
        for (const e of r.site.external) {
          await ns.exec(["ip", "tuntap", "add", "dev", e.name, "mode", "tun"]);
          await ns.exec(["ip", "link", "set", "dev", e.name, "up"]);
        }
        for (const wg of r.state.wireguard) await startWireguardGo(ns, wg.name);

        const batches = [...r.files.keys()].filter((f) => /^ip6?\.batch$/.test(f));
        expect(batches).toContain("ip.batch");
        const hasV6 =
          r.state.rules.some((x) => x.family === 6) ||
          r.state.routes.some((x) => x.dst.family === 6);
        expect(batches.includes("ip6.batch")).toBe(hasV6);
        const ruleLines: { line: string; v6: boolean }[] = [];
        const routeLines: { line: string; v6: boolean }[] = [];
        for (const name of batches) {
          const v6 = name === "ip6.batch";
          const lines = (r.files.get(name) ?? "").split("\n").filter((l) => l.trim() !== "");
          const kept = lines.filter((l) => !needsStandIn(l));
          const filtered = path.join(r.dir, `filtered-${name}`);
          await writeFile(filtered, kept.map((l) => `${l}\n`).join(""));
          await ns.exec(["ip", ...(v6 ? ["-6"] : []), "-batch", filtered]);
          for (const l of kept) {
            if (l.startsWith("rule add ")) ruleLines.push({ line: l, v6 });
            if (l.startsWith("route add ")) routeLines.push({ line: l, v6 });
          }
        }
        // Lines the stand-ins replace are exactly one per VLAN and one per tunnel.
        const all = batches.flatMap((b) => (r.files.get(b) ?? "").split("\n"));
        expect(all.filter(needsStandIn)).toHaveLength(
          r.site.interfaces.filter((i) => i.kind === "vlan").length + r.state.wireguard.length,
        );
        expect(ruleLines).toHaveLength(r.state.rules.length);
        expect(routeLines).toHaveLength(r.state.routes.length);

        const proto = String(r.state.protocol);
        expect(proto).toBe("77");
        const liveRules = [
          ...(JSON.parse((await ns.exec(["ip", "-4", "-j", "rule", "show"])).stdout) as LiveRule[])
            .filter((x) => x.protocol === proto)
            .map((x) => ({ priority: x.priority, key: liveRuleKey(x, false) })),
          ...(JSON.parse((await ns.exec(["ip", "-6", "-j", "rule", "show"])).stdout) as LiveRule[])
            .filter((x) => x.protocol === proto)
            .map((x) => ({ priority: x.priority, key: liveRuleKey(x, true) })),
        ];
        const wantRules = ruleLines.map((l) => renderedRule(l.line));
        expect(liveRules.map((x) => x.priority).sort((a, b) => a - b)).toEqual(
          wantRules.map((x) => x.priority).sort((a, b) => a - b),
        );
        expect(liveRules.map((x) => x.key).sort()).toEqual(wantRules.map((x) => x.key).sort());

        const showRoutes = async (v6: boolean) =>
          (
            JSON.parse(
              (await ns.exec(["ip", v6 ? "-6" : "-4", "-j", "route", "show", "table", "all"]))
                .stdout,
            ) as LiveRoute[]
          )
            .filter((x) => x.protocol === proto)
            .map((x) => liveRouteKey(x, v6));
        const liveRoutes = [...(await showRoutes(false)), ...(await showRoutes(true))];
        expect(liveRoutes.sort()).toEqual(routeLines.map((l) => renderedRoute(l.line)).sort());

        // The fail-closed routes are really there, with the highest metric.
        const unreachable = r.state.routes.filter((x) => x.type === "unreachable").length;
        expect(liveRoutes.filter((k) => k.includes(" unreachable "))).toHaveLength(unreachable);

        // sysctl.conf applies in the same namespace (its keys may name netpol's devices).
        const sysctl = r.files.get("sysctl.conf") ?? "";
        if (sysctl !== "") {
          await ns.exec(["sysctl", "-q", "-p", path.join(r.outDir, "sysctl.conf")]);
          for (const line of sysctl.trim().split("\n")) {
            const [key = "", value = ""] = line.split(/\s*=\s*/);
            expect((await ns.exec(["sysctl", "-n", key])).stdout.trim()).toBe(value);
          }
        }
      });

      it("every wireguard/*.conf is accepted by wg setconf and reads back from wg show dump", async () => {
        const confs = [...r.files.keys()].filter((f) => f.startsWith("wireguard/"));
        expect(confs.map((f) => f.replace(/^wireguard\/|\.conf$/g, "")).sort()).toEqual(
          r.state.wireguard.map((w) => w.name).sort(),
        );
        if (confs.length === 0) return;
        const ns = await freshNetns("wg");
        for (const [i, spec] of r.state.wireguard.entries()) {
          // The config names no interface, so any wireguard-go interface can take it.
          const ifname = `c${i}${suffix}`;
          await startWireguardGo(ns, ifname);
          const conf = `wireguard/${spec.name}.conf`;
          await ns.exec(["wg", "setconf", ifname, path.join(r.outDir, conf)]);
          const dump = (await ns.exec(["wg", "show", ifname, "dump"])).stdout.trim().split("\n");
          const [iface = "", ...peerLines] = dump.map((l) => l.split("\t"));
          const rendered = parseWgConf(r.files.get(conf) ?? "");

          expect(iface[1]).toBe(spec.publicKey);
          if (rendered.listenPort !== undefined) expect(iface[2]).toBe(rendered.listenPort);
          const live = peerLines
            .map((p) => ({
              publicKey: p[0] ?? "",
              allowedIps: (p[3] ?? "").split(",").sort(),
              endpoint: p[2] === "(none)" ? undefined : p[2],
              keepalive: p[7] === "off" ? undefined : p[7],
            }))
            .sort((a, b) => a.publicKey.localeCompare(b.publicKey));
          const want = rendered.peers
            .map((p) => ({
              publicKey: p.publicKey,
              allowedIps: p.allowedIps,
              endpoint: p.endpoint,
              keepalive: p.keepalive,
            }))
            .sort((a, b) => a.publicKey.localeCompare(b.publicKey));
          expect(live).toEqual(want);
          expect(live.map((p) => p.publicKey).sort()).toEqual(
            spec.peers.map((p) => p.publicKey).sort(),
          );
        }
      });
    });
  }
});
