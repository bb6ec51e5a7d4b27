import type { SiteState } from "../compile/desired.js";
import { renderRelay } from "../render/haproxy.js";
import type { RelayLive } from "../system/haproxy/relay.js";
import type { Change, RelayWrite } from "./types.js";

/** What the relay carries, in words: its published ports and HTTP host names. */
function carries(desired: SiteState): string {
  const relay = desired.relay;
  const ports = [...new Set(relay?.ports.map((p) => `tcp/${p.port}`))];
  const hosts = relay?.http?.routes.map((r) => r.hostname) ?? [];
  return [...ports, ...hosts].join(", ");
}

/**
 * The relay's change: started where a service asks for the PROXY protocol and none runs, given
 * the new configuration where it differs, stopped where no service asks any more. Pure: the
 * configuration is compared as text, as netpol renders it. Nothing where it was not read.
 */
export function relayPlan(
  desired: SiteState,
  live: RelayLive | undefined,
): { changes: Change[]; write?: RelayWrite } {
  if (!live) return { changes: [] };
  const config = desired.relay ? renderRelay(desired.site, desired.relay) : undefined;
  const change = (op: "add" | "set" | "remove", detail: string) => ({
    changes: [{ kind: "relay", op, detail } as const],
    write: { live, ...(config !== undefined ? { config } : {}) },
  });
  if (config === undefined)
    return live.pid !== undefined || live.config !== undefined
      ? change("remove", "no service asks for the PROXY protocol")
      : { changes: [] };
  if (live.pid === undefined)
    return change("add", `${carries(desired)}${live.config !== undefined ? " (not running)" : ""}`);
  if (live.config !== config) return change("set", `${carries(desired)} (configuration differs)`);
  return { changes: [] };
}
