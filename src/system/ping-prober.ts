import { createInterface } from "node:readline";
import { NetpolError } from "../errors.js";
import type { ProbeResult } from "../health/path-health.js";
import { formatAddress } from "../net/cidr.js";
import type { Address } from "../policy/intent.js";
import type { Runner } from "./runner.js";
import { type KeptRunning, keepRunning, type Spawner } from "./spawner.js";

/** One probe target: ICMP echo to `address`, the packets carrying `mark` (so they take its path). */
export interface PingProbe {
  readonly mark: number;
  readonly address: Address;
  readonly intervalSeconds: number;
}

/**
 * What one line of `ping -n -O` says about a sequence number: an answer (with its round trip),
 * a miss (no answer before the next probe went out, or an ICMP error), or nothing.
 */
export function readPingLine(
  line: string,
): { readonly seq: number; readonly result: ProbeResult } | undefined {
  const answer = /icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms/.exec(line);
  if (answer) return { seq: Number(answer[1]), result: { ok: true, rttMs: Number(answer[2]) } };
  const none = /^no answer yet for icmp_seq=(\d+)/.exec(line);
  if (none) return { seq: Number(none[1]), result: { ok: false, reason: "no answer" } };
  const error = /^From (\S+) icmp_seq=(\d+) (.+)$/.exec(line);
  if (error)
    return {
      seq: Number(error[2]),
      result: { ok: false, reason: `${error[3]?.trim()} (from ${error[1]})` },
    };
  return undefined;
}

/**
 * Probes every target once an interval, through one long-lived `ping -m MARK` per target: the
 * mark (SO_MARK) routes the probe by the path's own table, whichever path the egress uses, and
 * a process per target per second is never spawned. A ping that ends (its path's device gone,
 * say) counts as a miss each interval until it runs again.
 */
export function startPingProber(
  spawner: Spawner,
  probes: readonly PingProbe[],
  onResult: (probe: number, result: ProbeResult) => void,
): KeptRunning {
  return keepRunning(
    probes,
    (probe, i) => {
      const to = formatAddress(probe.address);
      const child = spawner.start("ping", [
        `-${probe.address.family}`,
        "-n",
        "-O",
        "-i",
        String(probe.intervalSeconds),
        "-m",
        String(probe.mark),
        to,
      ]);
      let last = 0;
      createInterface({ input: child.stdout }).on("line", (line) => {
        const read = readPingLine(line);
        // A late answer to a probe already counted as missed is not counted twice.
        if (!read || read.seq <= last) return;
        last = read.seq;
        const result = read.result.ok
          ? read.result
          : { ok: false as const, reason: `${read.result.reason} from ${to}` };
        onResult(i, result);
      });
      return child;
    },
    (i, probe, said) =>
      onResult(i, {
        ok: false,
        reason: `probe to ${formatAddress(probe.address)} failed: ${said || "ping ended"}`,
      }),
    (probe) => probe.intervalSeconds * 1000,
  );
}

/**
 * One probe to each target at once, each waiting a second at most: what `status` does where
 * no monitor runs. A process per target, once: not a loop.
 */
export async function pingOnce(
  runner: Runner,
  probes: readonly Omit<PingProbe, "intervalSeconds">[],
): Promise<ProbeResult[]> {
  return Promise.all(
    probes.map(async (p): Promise<ProbeResult> => {
      const to = formatAddress(p.address);
      const args = [`-${p.address.family}`, "-n", "-c", "1", "-W", "1", "-m", String(p.mark), to];
      const out = await runner
        .run("ping", args, { step: "path probe" })
        .then((r) => r.stdout)
        .catch((err: unknown) =>
          err instanceof NetpolError ? String(err.details.stderr ?? "") : "",
        );
      const answer = out
        .split("\n")
        .map(readPingLine)
        .find((r) => r !== undefined);
      if (answer?.result.ok) return answer.result;
      const reason = answer && !answer.result.ok ? answer.result.reason : "no answer";
      return { ok: false, reason: `${reason} from ${to}` };
    }),
  );
}
