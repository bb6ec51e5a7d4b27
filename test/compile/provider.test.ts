import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { chainsOf } from "../../src/compile/chains.js";
import { compileSite } from "../../src/compile/compile.js";
import { namedEndpoints } from "../../src/compile/wireguard.js";
import { formatAddress } from "../../src/net/cidr.js";
import { parsePolicy } from "../../src/policy/load.js";
import { parseProviderConf } from "../../src/policy/provider-conf.js";
import { providerLines } from "../../src/policy/provider-lines.js";
import { renderNftables } from "../../src/render/nftables.js";
import { renderIpBatches, renderSysctl } from "../../src/render/site-files.js";
import { renderWireguard } from "../../src/render/wireguard.js";
import { KEYS, problemsOf } from "../policy/fixtures.js";

// A provider's wg-quick file, imported as `netpol import-provider` does, becomes a path netpol
// manages: its device, addresses and peer, routed only from the egress's own tables.
const confFile = (name: string) => path.join(import.meta.dirname, "../policy/providers", name);
const imported = (file: string, name: string) => {
  const conf = parseProviderConf(readFileSync(confFile(file), "utf8"), file);
  const psk = conf.peer.presharedKey !== undefined ? { presharedKeyFile: `${name}.psk` } : {};
  return providerLines(name, conf, KEYS.home, { privateKeyFile: `${name}.key`, ...psk });
};

const policy = (providers: string, egress: string) => `version: 1
sites:
  home:
    wan: wan
    interfaces: [{ name: vl6, kind: physical }, { name: wan, kind: physical }]
    networks:
      - { name: files, cidr: 192.168.6.0/24, interface: vl6, address: 192.168.6.1 }
${providers}    egress:
${egress}`;

const SINGLE = `      - name: vpn
        from: [files]
        via: mullvad-se
        except: [192.168.0.0/16]
        masquerade: true
        table: 3
        priority: 200
        dns: {}
`;

const compiled = (text: string) => compileSite(parsePolicy(text, "p.yaml").intent, "home");
const KEYS_READ = new Map([
  ["mullvad-se.key", "<private key from mullvad-se.key>"],
  ["airvpn.key", "<private key from airvpn.key>"],
  ["airvpn.psk", "<preshared key from airvpn.psk>"],
]);

describe("a WireGuard provider path", () => {
  it("is a WireGuard device of its own with the provider's addresses, and the provider as its one peer", () => {
    const state = compiled(policy(imported("mullvad-se.conf", "mullvad-se"), SINGLE));
    expect(state.links).toEqual([{ kind: "wireguard", name: "mullvad-se", mtu: 1420 }]);
    const wg = state.wireguard.find((w) => w.name === "mullvad-se");
    expect(wg && renderWireguard(wg, KEYS_READ)).toBe(
      [
        "[Interface]",
        "PrivateKey = <private key from mullvad-se.key>",
        "",
        "# site mullvad-se",
        "[Peer]",
        "PublicKey = 3sipy+mhEitbxXAmKA0ycGdPA9JbJhhVz4Xh7cKlP3w=",
        "AllowedIPs = 0.0.0.0/0, ::/0",
        "Endpoint = 198.51.100.7:51820",
        "PersistentKeepalive = 25",
        "",
      ].join("\n"),
    );
  });

  it("is routed from the egress's table only: nothing in main, no default route taken over", () => {
    const { v4, v6 } = renderIpBatches(
      compiled(policy(imported("mullvad-se.conf", "mullvad-se"), SINGLE)),
    );
    expect(v4).toBe(
      [
        "link add name mullvad-se type wireguard",
        "link set dev mullvad-se mtu 1420",
        "link set dev mullvad-se up",
        "address add 192.168.6.1/24 dev vl6",
        "address add 10.64.12.34/32 dev mullvad-se",
        "address add fc00:bbbb:bbbb:bb01::1:c21/128 dev mullvad-se",
        "route add table 3 0.0.0.0/0 dev mullvad-se proto 77",
        "route add table 3 unreachable 0.0.0.0/0 metric 4294967295 proto 77",
        "route add table 3 unreachable 192.168.0.0/16 metric 4294967295 proto 77",
        "rule add priority 200 from 0.0.0.0/0 fwmark 0x3000000/0xff000000 lookup main suppress_prefixlength 0 protocol 77",
        "rule add priority 201 from 0.0.0.0/0 fwmark 0x2000000/0xfe000000 lookup 3 protocol 77",
        "",
      ].join("\n"),
    );
    expect(v6).toBe("");
    expect(`${v4}${v6}`).not.toMatch(/route add (?!table)/);
  });

  it("gets loose rp_filter on its device, and leaves conf.default alone: nobody recreates it", () => {
    const sysctl = renderSysctl(
      compiled(policy(imported("mullvad-se.conf", "mullvad-se"), SINGLE)),
    );
    expect(sysctl).toContain("net.ipv4.conf.mullvad-se.rp_filter = 2\n");
    expect(sysctl).not.toContain("conf.default");
  });

  it("sends the egress's DNS to the provider's resolver when `dns` names none", () => {
    const state = compiled(policy(imported("mullvad-se.conf", "mullvad-se"), SINGLE));
    expect(renderNftables(state)).toMatch(
      /map dns_to4 \{[^}]*elements = \{\s*0x[0-9a-f]+ : 10\.64\.0\.1\s*\}/,
    );
  });

  it("carries a preshared key and the provider's MTU and keepalive", () => {
    const text = policy(
      imported("airvpn-psk.conf", "airvpn"),
      SINGLE.replace("mullvad-se", "airvpn"),
    );
    const state = compiled(text);
    expect(state.links).toEqual([{ kind: "wireguard", name: "airvpn", mtu: 1320 }]);
    const wg = state.wireguard.find((w) => w.name === "airvpn");
    const conf = wg ? renderWireguard(wg, KEYS_READ) : "";
    expect(conf).toContain("PresharedKey = <preshared key from airvpn.psk>\n");
    expect(conf).toContain("PersistentKeepalive = 15\n");
    expect(conf).not.toContain("PostUp");
  });

  it("in a chain, is probed through itself towards its resolver", () => {
    const egress = SINGLE.replace("via: mullvad-se", "via: [mullvad-se, tun-hma]").replace(
      "        dns: {}\n",
      "",
    );
    const text = policy(
      `${imported("mullvad-se.conf", "mullvad-se")}    external: [{ name: tun-hma, gateway: 10.66.0.1 }]\n`,
      egress,
    );
    const parsed = parsePolicy(text, "p.yaml").intent;
    const site = parsed.sites.find((s) => s.name === "home");
    const [chain] = site ? chainsOf(parsed, site) : [];
    expect(chain?.paths.map((p) => [p.device, p.targets.map(formatAddress)])).toEqual([
      ["mullvad-se", ["10.64.0.1"]],
      ["tun-hma", ["10.66.0.1"]],
    ]);
  });

  it("is refused without masquerade: the provider accepts only its own address", () => {
    const text = policy(
      imported("mullvad-se.conf", "mullvad-se"),
      SINGLE.replace("masquerade: true", "masquerade: false"),
    );
    expect(problemsOf(text)).toEqual([
      "sites.home.egress[0].masquerade: the provider mullvad-se accepts only its own address from this site: set masquerade: true",
    ]);
  });

  it("never takes a private key in the policy", () => {
    const text = policy(
      imported("mullvad-se.conf", "mullvad-se").replace(
        "        privateKeyFile:",
        "        privateKey: qE1KrBXMmrCQm53tRWIEFvdox8fNaCBqllsYf/4x824=\n        privateKeyFile:",
      ),
      SINGLE,
    );
    expect(problemsOf(text)).toEqual([
      expect.stringMatching(
        /^sites\.home\.providers\[0\]\.privateKey: private keys never go in a policy/,
      ),
    ]);
  });

  it("shares no name with another device of the site", () => {
    const text = policy(
      `${imported("mullvad-se.conf", "mullvad-se")}    external: [{ name: mullvad-se }]\n`,
      SINGLE,
    );
    expect(problemsOf(text)).toContain(
      "sites.home.providers[0].name: device mullvad-se is declared twice on site home; keep one",
    );
  });

  it("names the providers whose endpoint is a host name, for the monitor to look up again", () => {
    const named = (file: string, name: string) => {
      const text = policy(imported(file, name), SINGLE.replace("mullvad-se", name));
      const site = parsePolicy(text, "p.yaml").intent.sites[0];
      return site ? [...namedEndpoints(site)] : [];
    };
    expect(named("proton-ch.conf", "proton")).toEqual([
      [
        "proton",
        {
          publicKey: "2WzKtqYAdNNTGlY+/bKvRpAWuA1oU/INGJP7/ocB7TY=",
          endpoint: "ch-123.vpn.example.net:51820",
        },
      ],
    ]);
    expect(named("mullvad-se.conf", "mullvad-se")).toEqual([]);
  });
});
