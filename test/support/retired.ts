import type { PolicyInput } from "../../src/apply/source/input.js";
import { parsePolicy } from "../../src/policy/load.js";

/**
 * A home router with two networks on physical ports, both leaving by the external device
 * `ext0`: `lan` falls back to the main table when it is down, `guest` fails closed; and the
 * same policy once `guest` (its port, network and egress) has left it, netpol still
 * forwarding for `lan`. The guest port's address is the distro's (netplan's), not
 * netpol's, so it stays when the network leaves. No keys. Issue 18, item 7.
 */
export const WITH_GUEST = `version: 1
sites:
  home:
    networks:
      - { name: lan, cidr: 192.168.1.0/24, interface: lan0, address: 192.168.1.1 }
      - { name: guest, cidr: 10.66.0.0/24, interface: guest0 }
    interfaces:
      - { name: lan0, kind: physical }
      - { name: guest0, kind: physical }
      - { name: wan0, kind: physical }
    wan: wan0
    external: [{ name: ext0 }]
    egress:
      - { name: guest-out, from: [guest], via: ext0, table: 3, priority: 200 }
      - { name: lan-out, from: [lan], via: ext0, table: 4, priority: 210, failClosed: false }
`;

/** The guest's port, network and egress gone. */
export const WITHOUT_GUEST = WITH_GUEST.split("\n")
  .filter((line) => !line.includes("guest"))
  .join("\n");

/** One of them, to apply as site home. */
export function homeInput(text: string, keyDir: string): PolicyInput {
  return { ...parsePolicy(text, "policy.yaml"), keyDir, site: "home" };
}
