import type { Target } from "../apply/target.js";
import { type ChainSpec, chainsOf } from "../compile/chains.js";
import { namedEndpoints } from "../compile/wireguard.js";
import { formatAddress } from "../net/cidr.js";
import type { EgressCanary, Intent } from "../policy/intent.js";
import { type ConnectTarget, startConnectProber } from "../system/connect-prober.js";
import { readIp } from "../system/iproute2/iproute2.js";
import { clearFlows, switchPath } from "../system/path-switch.js";
import { type PingProbe, startPingProber } from "../system/ping-prober.js";
import type { Spawner } from "../system/spawner.js";
import { readWireguard, resolveEndpointAgain } from "../system/wireguard.js";
import { activeIn } from "./active.js";
import { askCanary, judgeCanary } from "./canary.js";
import { type EgressHealth, type HealthEvent, HealthMonitor, type ProbeReport } from "./monitor.js";
import { handshakeAge } from "./path-health.js";
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
  // A path with a TCP or HTTP probe has that one target, probed by a process of its own.
  const connects: ConnectTarget[] = [];
  const connectFanOut: Omit<ProbeReport, "result">[] = [];
  chains.forEach((chain, c) => {
    chain.paths.forEach((path, p) => {
      if (path.probe) {
        const { localPort, ...probe } = path.probe;
        connects.push({
          ...probe,
          device: path.device,
          localPort,
          intervalSeconds: chain.health.interval,
        });
        connectFanOut.push({ chain: c, path: p, target: 0 });
        return;
      }
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
  const endpoints = siteIntent ? namedEndpoints(siteIntent) : new Map();
  const monitor = new HealthMonitor(chains, initial, {
    switchTo: (chain, active) => switchPath(target.runner, chain, active, protocol),
    clearFlows: (chain) => clearFlows(target.runner, chain),
    now: () => Date.now(),
    emit: (event) => {
      dirty = true;
      emit(event);
      // A provider path whose endpoint is a name: look it up again (`wg set`), in case it moved.
      const named = event.event === "path" && event.state === "down" && endpoints.get(event.path);
      if (named) void resolveEndpointAgain(target.runner, event.path, named).catch(() => {});
      // A change of state reaches `status` now, not at the next tick: what watch said and
      // what status says must agree.
      void write();
    },
  });
  const prober = startPingProber(spawner, probes, (i, result) => {
    dirty = true;
    for (const at of fanOut[i] ?? []) monitor.report({ ...at, result });
  });
  const connectProber = startConnectProber(spawner, connects, (i, result) => {
    dirty = true;
    const at = connectFanOut[i];
    if (at) monitor.report({ ...at, result });
  });
  const canaries = startCanaries(target, chains, monitor);
  const handshakes = startHandshakeChecks(target, chains, monitor);
  const timer = setInterval(() => void write(), 1000);
  await write();
  return {
    snapshot: () => monitor.snapshot(),
    async stop() {
      clearInterval(timer);
      await canaries.stop();
      await handshakes.stop();
      await prober.stop();
      await connectProber.stop();
      await monitor.idle();
      await writing;
    },
  };
}

/**
 * Each egress's leak canary, once its interval: the first request at once, the next an
 * interval after the last answer (a slow echo never stacks requests up).
 */
function startCanaries(
  target: Target,
  chains: readonly ChainSpec[],
  monitor: HealthMonitor,
): { stop(): Promise<void> } {
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const asking = new Set<Promise<void>>();
  const ask = (c: number, canary: EgressCanary) => {
    if (stopped) return;
    const before = monitor.activeOf(c);
    const one = askCanary(target.runner, canary).then((answer) => {
      asking.delete(one);
      if (stopped) return;
      const verdict = judgeCanary(
        canary,
        answer,
        before,
        monitor.activeOf(c),
        monitor.canaryAlarms(c),
        Date.now(),
      );
      monitor.canaryResult(c, verdict);
      const t = setTimeout(() => {
        timers.delete(t);
        ask(c, canary);
      }, canary.interval * 1000);
      timers.add(t);
    });
    asking.add(one);
  };
  chains.forEach((chain, c) => {
    if (chain.canary) ask(c, chain.canary);
  });
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(asking);
    },
  };
}

/** How often WireGuard paths' handshakes are read: their ages count in seconds, against minutes. */
const HANDSHAKE_CHECK_MS = 5000;

/**
 * Each WireGuard path's latest handshake, read every few seconds (over wireguard-go's control
 * socket where the runner has one, else `wg show NAME dump`) and told to the monitor.
 */
function startHandshakeChecks(
  target: Target,
  chains: readonly ChainSpec[],
  monitor: HealthMonitor,
): { stop(): Promise<void> } {
  const watched = chains.flatMap((chain, c) =>
    chain.paths.flatMap((p, i) =>
      p.wireguard ? [{ c, i, device: p.device, peer: p.wireguard.peer }] : [],
    ),
  );
  if (watched.length === 0) return { stop: async () => {} };
  const names = new Set(watched.map((w) => w.device));
  let reading: Promise<void> | undefined;
  const check = () => {
    if (reading) return;
    reading = readWireguard(target.runner, names)
      .then(({ live }) => {
        const now = Date.now();
        for (const w of watched) {
          const peers = live
            .find((l) => l.name === w.device)
            ?.peers.filter((p) => w.peer === undefined || p.publicKey === w.peer);
          if (!peers?.length) continue;
          const latest = Math.max(...peers.map((p) => p.latestHandshake));
          monitor.handshake(w.c, w.i, handshakeAge(latest, now));
        }
      })
      // An unreadable interface says nothing new: its probes still judge the path.
      .catch(() => {})
      .finally(() => {
        reading = undefined;
      });
  };
  check();
  const timer = setInterval(check, HANDSHAKE_CHECK_MS);
  return {
    async stop() {
      clearInterval(timer);
      await reading;
    },
  };
}
