import { setTimeout as sleep } from "node:timers/promises";
import type { Target } from "../apply/target.js";
import type { Agent } from "../fleet/agent/agent.js";
import type { EventBus } from "../resident/events.js";
import type { FrontDoor } from "./front-door.js";

export interface AgentFrontDoor {
  close(): Promise<void>;
}

/**
 * `netpol agent --listen`: serve's HTTP front door on the agent's own resident, so a fleet's
 * site runs one resident and still has /status, /metrics, /healthz, the page and /plan. Its
 * policy comes from etcd: a posted policy is refused (a dry run is not), as are `?confirm`
 * applies; `/reapply` puts the policy in force back. Until the agent's first revision starts
 * the resident, the site is read from the tools. Loaded only with --listen: an agent without
 * it carries no HTTP server.
 *
 * It opens beside the agent's start, not before it: at boot the address it binds (a tunnel's)
 * is put back by the resident's first round, so while it is not there (EADDRNOTAVAIL) the
 * door tries again each second; any other failure to listen stops the agent. Undefined when
 * `signal` aborted first.
 */
export async function openAgentFrontDoor(
  door: FrontDoor,
  o: {
    readonly target: Target;
    readonly site: string;
    readonly keyDir: string;
    readonly etcd: readonly string[];
    readonly agent: Agent;
    readonly bus: EventBus;
    readonly signal: AbortSignal;
  },
): Promise<AgentFrontDoor | undefined> {
  const { buildApp } = await import("../server/app.js");
  const build = () =>
    buildApp({
      target: o.target,
      token: door.token,
      ...(door.viewerToken !== undefined ? { viewerToken: door.viewerToken } : {}),
      keyDir: o.keyDir,
      site: o.site,
      logger: true,
      accessLog: door.accessLog,
      dashboard: { background: true },
      resident: { bus: o.bus, current: () => o.agent.resident },
      fleet: { etcd: o.etcd },
    });
  while (!o.signal.aborted) {
    const app = await build();
    try {
      await app.listen({ host: door.host, port: door.port });
      return { close: () => app.close() };
    } catch (err) {
      await app.close();
      if ((err as NodeJS.ErrnoException).code !== "EADDRNOTAVAIL") throw err;
    }
    await sleep(1_000, undefined, { signal: o.signal }).catch(() => undefined);
  }
  return undefined;
}
