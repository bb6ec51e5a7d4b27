import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { NetpolError } from "../../src/errors.js";
import { formatAddress, formatCidr } from "../../src/net/cidr.js";
import { formatEndpoint } from "../../src/net/host-port.js";
import { parseProviderConf } from "../../src/policy/provider-conf.js";

// Providers' wg-quick files as they hand them out: documentation addresses, generated keys.
const dir = path.join(import.meta.dirname, "providers");
const fixture = (name: string) => {
  const file = path.join(dir, name);
  return parseProviderConf(readFileSync(file, "utf8"), file);
};
const summary = (name: string) => {
  const c = fixture(name);
  return {
    addresses: c.addresses.map(formatCidr),
    dns: c.dns.map(formatAddress),
    mtu: c.mtu,
    endpoint: formatEndpoint(c.peer.endpoint),
    psk: c.peer.presharedKey !== undefined,
    keepalive: c.peer.keepalive,
    ignored: c.ignored,
  };
};

describe("a provider's wg-quick file", () => {
  it("reads Mullvad's: both families, its resolver, an address endpoint", () => {
    expect(summary("mullvad-se.conf")).toEqual({
      addresses: ["10.64.12.34/32", "fc00:bbbb:bbbb:bb01::1:c21/128"],
      dns: ["10.64.0.1"],
      mtu: undefined,
      endpoint: "198.51.100.7:51820",
      psk: false,
      keepalive: undefined,
      ignored: [],
    });
    expect(fixture("mullvad-se.conf").privateKey).toBe(
      "qE1KrBXMmrCQm53tRWIEFvdox8fNaCBqllsYf/4x824=",
    );
  });

  it("reads Proton's: comment lines skipped, IPv4 only, a host name endpoint kept as written", () => {
    const c = fixture("proton-ch.conf");
    expect(summary("proton-ch.conf")).toMatchObject({
      addresses: ["10.2.0.2/32"],
      dns: ["10.2.0.1"],
      endpoint: "ch-123.vpn.example.net:51820",
    });
    expect(c.peer.endpoint.address).toBeUndefined();
  });

  it("reads a preshared key, the MTU, keepalive, and names wg-quick's hooks it will not run", () => {
    expect(summary("airvpn-psk.conf")).toEqual({
      addresses: ["10.150.7.22/32", "fd7d:76ee:e68f:a993:4c2b:1e07:55a1:9bd2/128"],
      dns: ["10.128.0.1", "fd7d:76ee:e68f:a993::1"],
      mtu: 1320,
      endpoint: "203.0.113.33:1637",
      psk: true,
      keepalive: 15,
      ignored: [
        { line: 6, key: "PostUp" },
        { line: 7, key: "PreDown" },
      ],
    });
  });

  const KEY = "qE1KrBXMmrCQm53tRWIEFvdox8fNaCBqllsYf/4x824=";
  const PEER = "3sipy+mhEitbxXAmKA0ycGdPA9JbJhhVz4Xh7cKlP3w=";
  const good = [
    "[Interface]",
    `PrivateKey = ${KEY}`,
    "Address = 10.64.12.34/32",
    "",
    "[Peer]",
    `PublicKey = ${PEER}`,
    "AllowedIPs = 0.0.0.0/0",
    "Endpoint = 198.51.100.7:51820",
  ];
  const edited = (at: number, line: string | undefined, insert = false) => {
    const lines = [...good];
    if (insert) lines.splice(at - 1, 0, line ?? "");
    else if (line === undefined) lines.splice(at - 1, 1);
    else lines[at - 1] = line;
    return lines.join("\n");
  };

  it.each([
    [
      "a key in the wrong section",
      edited(4, "Endpoint = 198.51.100.7:51820"),
      4,
      /Endpoint is not a key of \[Interface\]/,
    ],
    [
      "a line that is no key = value",
      edited(3, "Address 10.64.12.34/32"),
      3,
      /expected `Key = value`/,
    ],
    ["a malformed private key", edited(2, "PrivateKey = nope"), 2, /PrivateKey: /],
    ["no private key", edited(2, undefined), 1, /\[Interface\] has no PrivateKey/],
    ["a bad address", edited(3, "Address = 10.64.300.1/32"), 3, /Address 10\.64\.300\.1\/32/],
    ["an endpoint without a port", edited(8, "Endpoint = 198.51.100.7"), 8, /not host:port/],
    ["no endpoint", edited(8, undefined), 5, /\[Peer\] has no Endpoint/],
    ["a split tunnel", edited(7, "AllowedIPs = 10.0.0.0/8"), 7, /neither 0\.0\.0\.0\/0 nor ::\/0/],
    ["a second peer", `${good.join("\n")}\n[Peer]\nPublicKey = ${PEER}\n`, 9, /a second \[Peer\]/],
    [
      "a key before any section",
      edited(1, `PrivateKey = ${KEY}`, true),
      1,
      /comes before \[Interface\]/,
    ],
    ["an unknown section", edited(5, "[Peers]"), 5, /unknown section \[Peers\]/],
    ["no peer", good.slice(0, 4).join("\n"), 1, /no \[Peer\] section/],
    [
      "a keepalive out of range",
      `${good.join("\n")}\nPersistentKeepalive = 70000\n`,
      9,
      /PersistentKeepalive must be/,
    ],
  ])("refuses %s with one error naming the file and line", (_what, text, line, message) => {
    let caught: unknown;
    try {
      parseProviderConf(text, "/etc/netpol/bad.conf");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NetpolError);
    const err = caught as NetpolError;
    expect(err.code).toBe("NETPOL_E_PROVIDER_CONF");
    expect(err.message).toMatch(new RegExp(`^/etc/netpol/bad\\.conf:${line}: `));
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(KEY);
  });

  it("accepts the file it is given, edited nowhere", () => {
    expect(parseProviderConf(good.join("\n"), "ok.conf").addresses.map(formatCidr)).toEqual([
      "10.64.12.34/32",
    ]);
  });
});
