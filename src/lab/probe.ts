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

/** Packets a named nft counter has seen: the lab's own (`table inet labcount`) unless told. */
export async function counterPackets(
  ns: string,
  name: string,
  table = "labcount",
): Promise<number> {
  const r = await execa("ip", ["netns", "exec", ns, "nft", "list", "counter", "inet", table, name]);
  return Number(/packets (\d+)/.exec(r.stdout)?.[1] ?? Number.NaN);
}

/** Counts forwarded packets matching `match` in a namespace, in a lab-owned table. */
export async function addCounter(ns: string, name: string, match: string): Promise<void> {
  const file = `table inet labcount {}\nadd counter inet labcount ${name}\nadd chain inet labcount fwd_${name} { type filter hook forward priority -300; }\nadd rule inet labcount fwd_${name} ${match} counter name ${name}\n`;
  await execa("ip", ["netns", "exec", ns, "nft", "-f", "-"], { input: file });
}

/** An HTTP GET with a Host header, as a browser asking the VPS for a hostname sends it. */
export async function httpGetHost(
  ns: string,
  url: string,
  host: string,
  timeoutMs = 3000,
): Promise<{ ok: boolean; text: string }> {
  const r = await execa(
    "ip",
    [
      "netns",
      "exec",
      ns,
      "curl",
      "--silent",
      "--show-error",
      "--fail",
      "--max-time",
      String(timeoutMs / 1000),
      "--header",
      `Host: ${host}`,
      url,
    ],
    { reject: false },
  );
  return r.exitCode === 0
    ? { ok: true, text: r.stdout.trim() }
    : { ok: false, text: r.stderr.trim() || `exit ${r.exitCode}` };
}

// One GET every interval, each answer a line on stdout: "ok BODY" or "fail REASON". Node keeps
// connections alive, and a server that reloads its config closes the idle ones: a request sent
// on one just as it closes meets ECONNRESET, and is sent once more on a new connection, as
// HTTP clients do (RFC 9112 §9.3.1, Node's `reusedSocket`). A request on a new connection that
// fails is a failure. Over HTTPS the certificate is verified for the Host, against `ca` alone.
const LOOP = `const [u,h,i,ca]=process.argv.slice(1);const tls=u.startsWith("https:");const m=require(tls?"https":"http");const o={headers:{Host:h},timeout:2000,...(tls?{servername:h,ca:require("fs").readFileSync(ca)}:{})};const ask=(again)=>{const q=m.get(u,o,r=>{let b="";r.on("data",d=>b+=d);r.on("end",()=>console.log((r.statusCode===200&&b?"ok ":"fail "+r.statusCode+" ")+b.trim()))});q.on("error",e=>{if(again&&q.reusedSocket&&e.code==="ECONNRESET")ask(false);else console.log("fail "+e.code)}).on("timeout",()=>q.destroy(new Error("timeout")))};const t=setInterval(()=>ask(true),Number(i));process.on("SIGTERM",()=>{clearInterval(t);setTimeout(()=>process.exit(0),2500)})`;

/**
 * Requests `url` with Host `host` every `intervalMs` from inside a namespace until stopped;
 * `stop()` waits for the answers in flight and returns every answer. An https URL is verified
 * for `host` against the PEM roots in `caFile` only.
 */
export function requestLoop(ns: string, url: string, host: string, intervalMs = 50, caFile = "") {
  const child = execa(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", LOOP, url, host, String(intervalMs), caFile],
    { reject: false },
  );
  return {
    /** Every answer in order (`ok BODY` or `fail REASON`), the oks counted, the failures listed. */
    async stop(): Promise<{ ok: number; failed: string[]; answers: string[] }> {
      child.kill("SIGTERM");
      const r = await child;
      const lines = String(r.stdout).split("\n").filter(Boolean);
      return {
        ok: lines.filter((l) => l.startsWith("ok ")).length,
        failed: lines.filter((l) => !l.startsWith("ok ")),
        answers: lines,
      };
    },
  };
}

const UDP_ASK = `const s=require("dgram").createSocket("udp4");const t=setTimeout(()=>{process.stderr.write("no answer");process.exit(1)},Number(process.argv[3]));s.on("message",m=>{clearTimeout(t);process.stdout.write(String(m).trim());s.close()});s.send("who am i",Number(process.argv[2]),process.argv[1])`;

/** One UDP datagram to host:port from inside a namespace, and the answer. */
export async function udpAsk(
  ns: string,
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<{ ok: boolean; text: string }> {
  const r = await execa(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", UDP_ASK, host, String(port), String(timeoutMs)],
    { reject: false },
  );
  return r.exitCode === 0
    ? { ok: true, text: r.stdout }
    : { ok: false, text: r.stderr.trim() || `exit ${r.exitCode}` };
}
