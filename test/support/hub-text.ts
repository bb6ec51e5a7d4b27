/**
 * A hub policy's text: site `hub` with one WAN, a spoke site `s<i>` for each key, and the
 * tunnel's members with those keys (spoke i at 10.100.0.<i+1>). The resident and plan tests
 * change one key of it and watch what the change costs.
 */
export function hubText(o: {
  readonly hubKey: string;
  readonly keys: readonly string[];
  readonly tunnel?: string;
  /** The hub's WireGuard interface and a listen port; the tunnel's name and none without. */
  readonly wg?: string;
}): string {
  const hubExtra = o.wg ? `, interface: ${o.wg}` : "";
  const port = o.wg ? ", listenPort: 51820" : "";
  return `version: 1
sites:
  hub:
    wan: eth0
    interfaces: [{ name: eth0, kind: physical }]
${o.keys.map((_, i) => `  s${i}: {}`).join("\n")}
tunnels:
  - name: ${o.tunnel ?? "t"}
    topology: hub
    hub: hub
    members:
      - { site: hub, address: 10.100.255.254/16, publicKey: ${o.hubKey}, privateKeyFile: hub.key${hubExtra}, endpoint: "192.0.2.1:51820"${port} }
${o.keys.map((k, i) => `      - { site: s${i}, address: 10.100.0.${i + 1}/16, publicKey: ${k}, privateKeyFile: s.key }`).join("\n")}
`;
}
