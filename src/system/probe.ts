import type { Runner } from "./runner.js";

export interface TcpTarget {
  readonly host: string;
  readonly port: number;
}

/** As many connects at once: well under the 1,024 descriptors a process may hold by default. */
const AT_ONCE = 256;

// stdin: "host port" lines; stdout: a JSON array of booleans, one per line, in order. Each
// target gets one connect, given up after 1 s.
export const PROBE_SCRIPT = `const net=require("net");let i="";process.stdin.on("data",d=>i+=d).on("end",async()=>{const t=i.split("\\n").filter(Boolean).map(l=>l.split(" "));const ok=new Array(t.length).fill(false);let next=0;const one=()=>new Promise(done=>{const k=next++;if(k>=t.length)return done(false);const s=net.connect({host:t[k][0],port:Number(t[k][1])});let over=false;const end=v=>{if(over)return;over=true;ok[k]=v;s.destroy();done(true)};s.setTimeout(1000,()=>end(false));s.on("connect",()=>end(true)).on("error",()=>end(false))});const worker=async()=>{while(await one());};await Promise.all(Array.from({length:${AT_ONCE}},worker));process.stdout.write(JSON.stringify(ok))})`;

/**
 * Whether each target answers a TCP connect from inside the runner's namespace: one node
 * process for all of them, side by side, so a site publishing thousands of ports is probed
 * in seconds, not one `nc` (and up to a second) after another.
 */
export async function probeTcp(runner: Runner, targets: readonly TcpTarget[]): Promise<boolean[]> {
  if (targets.length === 0) return [];
  const r = await runner.run(process.execPath, ["-e", PROBE_SCRIPT], {
    input: targets.map((t) => `${t.host} ${t.port}\n`).join(""),
    step: "status probe",
  });
  // An answer it cannot read says nothing answered, as a failed connect would.
  let answers: unknown;
  try {
    answers = JSON.parse(r.stdout);
  } catch {
    answers = undefined;
  }
  return Array.isArray(answers) && answers.length === targets.length
    ? answers.map((a) => a === true)
    : targets.map(() => false);
}
