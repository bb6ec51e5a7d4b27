import type { Target } from "../apply/target.js";
import { chainsOf } from "../compile/chains.js";
import { formatAddress } from "../net/cidr.js";
import type { Intent } from "../policy/intent.js";
import { readIp } from "../system/iproute2/iproute2.js";
import { clearFlows, switchPath } from "../system/path-switch.js";
import { type PingProbe, startPingProber } from "../system/ping-prober.js";
import type { Spawner } from "../system/spawner.js";
import { activeIn } from "./active.js";
import { type EgressHealth, type HealthEvent, HealthMonitor, type ProbeReport } from "./monitor.js";
import { writeHealthReport } from "./report-file.js";

export interface Supervisor {
  snapshot(): EgressHealth[];
  stop(): Promise<void>;
}

/**
 * Runs the health monitor of a site's probed egresses: one long-lived prober for all their
 * paths (a target probed by two chains through the same path is probed once), the monitor's
 * switches through `ip route replace` and conntrack, its events to `emit`, and its report
 * to the state directory for `status`. Undefined when nothing is probed.
 */
export async function superviseHealth(
  target: Target,
  spawner: Spawner,
  intent: Intent,
  site: string,
  emit: (event: HealthEvent) => void,
): Promise<Supervisor | undefined> {
  const siteIntent = intent.sites.find((s) => s.name === site);
  const chains = siteIntent ? chainsOf(intent, siteIntent) : [];
  if (chains.length === 0) return undefined;
  const protocol = intent.settings.routeProtocol;
  const live = await readIp(target.runner, protocol);
  const initial = chains.map((c) => activeIn(c, live.routes.owned) ?? 0);

  const probes: PingProbe[] = [];
  const fanOut: Omit<ProbeReport, "result">[][] = [];
  const index = new Map<string, number>();
  chains.forEach((chain, c) => {
    chain.paths.forEach((path, p) => {
      path.targets.forEach((address, t) => {
        const intervalSeconds = chain.health.interval;
        const key = `${path.mark} ${formatAddress(address)} ${intervalSeconds}`;
        let at = index.get(key);
        if (at === undefined) {
          at = probes.push({ mark: path.mark, address, intervalSeconds }) - 1;
          index.set(key, at);
          fanOut.push([]);
        }
        fanOut[at]?.push({ chain: c, path: p, target: t });
      });
    });
  });

  let dirty = true;
  // Writes run one after another, each with the snapshot of its own moment, so a slow write
  // never lands after a newer one.
  let writing = Promise.resolve();
  const write = () => {
    writing = writing.then(async () => {
      if (!dirty) return;
      dirty = false;
      await writeHealthReport(target.files, monitor.snapshot(), Date.now()).catch(() => {
        dirty = true;
      });
    });
    return writing;
  };
  const monitor = new HealthMonitor(chains, initial, {
    switchTo: (chain, active) => switchPath(target.runner, chain, active, protocol),
    clearFlows: (chain) => clearFlows(target.runner, chain),
    now: () => Date.now(),
    emit: (event) => {
      dirty = true;
      emit(event);
      // A change of state reaches `status` now, not at the next tick: what watch said and
      // what status says must agree.
      void write();
    },
  });
  const prober = startPingProber(spawner, probes, (i, result) => {
    dirty = true;
    for (const at of fanOut[i] ?? []) monitor.report({ ...at, result });
  });
  const timer = setInterval(() => void write(), 1000);
  await write();
  return {
    snapshot: () => monitor.snapshot(),
    async stop() {
      clearInterval(timer);
      await prober.stop();
      await monitor.idle();
      await writing;
    },
  };
}
