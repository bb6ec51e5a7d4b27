import { createInterface } from "node:readline";
import type { ProbeResult } from "../health/path-health.js";
import { formatAddress } from "../net/cidr.js";
import type { ConnectProbe } from "../policy/intent.js";
import type { Runner } from "./runner.js";
import { type KeptRunning, keepRunning, type Spawner } from "./spawner.js";

/** A path's TCP or HTTP probe: from the path device's address and netpol's port for it. */
export interface ConnectTarget extends ConnectProbe {
  readonly device: string;
  readonly localPort: number;
  readonly intervalSeconds: number;
}

// argv[1]: the probe as JSON. Each round: the device's address of the target's family (it may
// come and go), a connect (or GET) from it and the probe's port, given up at the next round;
// one line each: "ok RTT_MS" or "miss REASON". A connection that answered is reset, not closed,
// so no TIME_WAIT holds the port for the next round. `count` rounds, or forever with 0.
export const CONNECT_PROBE_SCRIPT = `const net=require("net"),http=require("http"),os=require("os");const o=JSON.parse(process.argv[1]);const fam=o.family===6?"IPv6":"IPv4";const say=l=>process.stdout.write(l+"\\n");let n=0;const round=()=>{const t0=Date.now();const next=()=>{if(o.count&&++n>=o.count)return;setTimeout(round,Math.max(0,o.intervalMs-(Date.now()-t0)))};const a=(os.networkInterfaces()[o.device]||[]).find(x=>x.family===fam&&!x.address.startsWith("fe80"));if(!a){say("miss device "+o.device+" has no "+fam+" address");return next()}let over=false,sock;const end=(ok,why,reset)=>{if(over)return;over=true;clearTimeout(timer);if(sock){if(reset&&sock.resetAndDestroy)sock.resetAndDestroy();else sock.destroy()}say(ok?"ok "+(Date.now()-t0):"miss "+why);next()};const timer=setTimeout(()=>end(false,"no answer within "+o.intervalMs/1000+" s"),o.intervalMs);const from={localAddress:a.address,localPort:o.localPort};if(o.kind==="tcp"){sock=net.connect({host:o.host,port:o.port,...from});sock.on("connect",()=>end(true,"",true)).on("error",e=>end(false,e.code||e.message))}else{const q=http.get(o.url,{...from,agent:false},r=>{r.resume();end(r.statusCode<400,"HTTP "+r.statusCode,true)});q.on("socket",s=>{sock=s}).on("error",e=>end(false,e.code||e.message))}};round()`;

const argOf = (t: ConnectTarget, count: number) =>
  JSON.stringify({
    kind: t.kind,
    family: t.host.family,
    host: formatAddress(t.host),
    port: t.port,
    url: t.url,
    device: t.device,
    localPort: t.localPort,
    intervalMs: t.intervalSeconds * 1000,
    count,
  });

/** One line of the probe's output, as a probe result. */
export function readConnectLine(line: string, t: ConnectTarget): ProbeResult | undefined {
  const ok = /^ok (\d+)$/.exec(line);
  if (ok) return { ok: true, rttMs: Number(ok[1]) };
  const miss = /^miss (.+)$/.exec(line);
  const to = t.url ?? `tcp ${formatAddress(t.host)}:${t.port}`;
  return miss ? { ok: false, reason: `${miss[1]} from ${to}` } : undefined;
}

/**
 * Probes each target once an interval through one long-lived node process per target (as
 * ping-prober does for ICMP): its connection leaves from the path device's address and from the
 * probe's port, which netpol's nft rule gives the path's mark, so it takes that path whichever
 * one the egress uses. A process that ends counts as a miss and is started again.
 */
export function startConnectProber(
  spawner: Spawner,
  targets: readonly ConnectTarget[],
  onResult: (target: number, result: ProbeResult) => void,
): KeptRunning {
  return keepRunning(
    targets,
    (t, i) => {
      const child = spawner.start(process.execPath, ["-e", CONNECT_PROBE_SCRIPT, argOf(t, 0)]);
      createInterface({ input: child.stdout }).on("line", (line) => {
        const result = readConnectLine(line, t);
        if (result) onResult(i, result);
      });
      return child;
    },
    (i, _t, said) =>
      onResult(i, { ok: false, reason: `probe process ended: ${said || "no word"}` }),
    (t) => t.intervalSeconds * 1000,
  );
}

/** One round of each probe at once (status, where no monitor runs). */
export async function connectOnce(
  runner: Runner,
  targets: readonly ConnectTarget[],
): Promise<ProbeResult[]> {
  return Promise.all(
    targets.map(async (t): Promise<ProbeResult> => {
      const out = await runner
        .run(process.execPath, ["-e", CONNECT_PROBE_SCRIPT, argOf(t, 1)], { step: "path probe" })
        .then((r) => r.stdout)
        .catch(() => "");
      const read = out
        .split("\n")
        .map((l) => readConnectLine(l, t))
        .find((r) => r !== undefined);
      return read ?? { ok: false, reason: "the probe printed no answer" };
    }),
  );
}
