/** bench/fleet.ts's fleet, as policy text: also what bench/fleet-publish.ts prepares. */

export const spoke = (i: number) => `s${i}`;

/**
 * Two hubs, each the hub of a tunnel to half the spokes; spokes advertise nothing. `change`: a
 * second network for s7 (the publish that changes one spoke); `lean`: spokes without a LAN.
 */
export function fleetPolicy(
  n: number,
  keys: readonly string[],
  { change = "", lean = false }: { change?: string; lean?: boolean } = {},
): string {
  const lines = ["version: 1", "sites:", "  hub0: {}", "  hub1: {}"];
  for (let i = 0; i < n; i++) {
    if (lean && i !== 7) {
      lines.push(`  ${spoke(i)}: {}`);
      continue;
    }
    const lan = `10.${128 + (i >> 8)}.${i & 0xff}`;
    const extra = i === 7 && change ? `, { name: extra, cidr: ${change}, interface: eth0 }` : "";
    lines.push(
      `  ${spoke(i)}: { interfaces: [{ name: eth0, kind: physical }], networks: [{ name: lan, cidr: ${lan}.0/24, interface: eth0, address: ${lan}.1 }${extra}] }`,
    );
  }
  lines.push("tunnels:");
  for (const h of [0, 1]) {
    lines.push(
      `  - name: wg${h}`,
      "    topology: hub",
      `    hub: hub${h}`,
      "    members:",
      `      - { site: hub${h}, address: 172.${16 + h}.0.1/16, endpoint: "203.0.113.${10 + h}:51820", publicKey: "${keys[n + h]}", privateKeyFile: hub${h}.key }`,
    );
    for (let i = h; i < n; i += 2) {
      const a = `172.${16 + h}.${((i + 2) >> 8) & 0xff}.${(i + 2) & 0xff}/16`;
      lines.push(
        `      - { site: ${spoke(i)}, address: ${a}, publicKey: "${keys[i]}", privateKeyFile: ${spoke(i)}.key }`,
      );
    }
  }
  lines.push("rollout:", "  waves: [[s0], [hub0, hub1]]", "  healthSeconds: 0", "");
  return lines.join("\n");
}
