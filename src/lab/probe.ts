import { execa } from "execa";

const FETCH = `fetch(process.argv[1],{signal:AbortSignal.timeout(Number(process.argv[2]))}).then(r=>r.text()).then(t=>process.stdout.write(t.trim()),e=>{process.stderr.write(String(e.cause?.code??e.name));process.exit(1)})`;

/** An HTTP GET from inside a namespace: the body, or the error code (e.g. EHOSTUNREACH). */
export async function httpGet(
  ns: string,
  url: string,
  timeoutMs = 3000,
): Promise<{ ok: boolean; text: string }> {
  const r = await execa(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", FETCH, url, String(timeoutMs)],
    {
      reject: false,
    },
  );
  return r.exitCode === 0
    ? { ok: true, text: r.stdout }
    : { ok: false, text: r.stderr.trim() || `exit ${r.exitCode}` };
}

/** Polls until `check` holds or the time is up; returns the last result. */
export async function eventually<T>(
  probe: () => Promise<T>,
  check: (t: T) => boolean,
  timeoutMs = 8000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await probe();
    if (check(result) || Date.now() > deadline) return result;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Packets a lab counter (`table inet labcount`) has seen. */
export async function counterPackets(ns: string, name: string): Promise<number> {
  const r = await execa("ip", [
    "netns",
    "exec",
    ns,
    "nft",
    "list",
    "counter",
    "inet",
    "labcount",
    name,
  ]);
  return Number(/packets (\d+)/.exec(r.stdout)?.[1] ?? Number.NaN);
}

/** Counts forwarded packets matching `match` in a namespace, in a lab-owned table. */
export async function addCounter(ns: string, name: string, match: string): Promise<void> {
  const file = `table inet labcount {}\nadd counter inet labcount ${name}\nadd chain inet labcount fwd_${name} { type filter hook forward priority -300; }\nadd rule inet labcount fwd_${name} ${match} counter name ${name}\n`;
  await execa("ip", ["netns", "exec", ns, "nft", "-f", "-"], { input: file });
}
