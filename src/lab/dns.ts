import path from "node:path";
import { execa } from "execa";
import { adoptPid } from "./lab.js";
import { startInNetns } from "./processes.js";

/**
 * DNS in the lab: resolvers (dnsmasq, its files in the lab's directory) that each answer one
 * name with an address of their own, so an answer tells which resolver it came from, and a
 * client that asks over UDP or TCP from inside a namespace.
 */

/** The name every lab resolver answers, each with its own address. */
export const PROBE_NAME = "probe.example";

/**
 * Starts dnsmasq in a namespace on `listen`: it answers PROBE_NAME with `answer`, or, with
 * `forward`, forwards every question there. No cache, so each answer is asked anew. The lab
 * stops it on the way down.
 */
export async function startResolver(
  dir: string,
  ns: string,
  name: string,
  listen: string,
  reply: { readonly answer: string } | { readonly forward: string },
): Promise<number> {
  const file = (ext: string) => path.join(dir, `dnsmasq-${name}.${ext}`);
  const pid = startInNetns(ns, [
    "dnsmasq",
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--bind-interfaces",
    `--listen-address=${listen}`,
    "--cache-size=0",
    "--user=root",
    `--pid-file=${file("pid")}`,
    `--log-facility=${file("log")}`,
    "--log-queries",
    "answer" in reply ? `--address=/${PROBE_NAME}/${reply.answer}` : `--server=${reply.forward}`,
  ]);
  await adoptPid(dir, pid);
  // Up once it answers.
  for (let i = 0; i < 50; i++) {
    const r = await execa("ip", ["netns", "exec", ns, "ss", "-Hlun", `src ${listen}:53`], {
      reject: false,
    });
    if (r.stdout.trim()) return pid;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`dnsmasq ${name} did not listen on ${listen}:53 in ${ns}`);
}

// One A question for argv[2] to argv[1]:53 over argv[3] (udp or tcp); prints the first
// answer's address, or the error code.
const ASK = `const [s,n,t]=process.argv.slice(1);const q=Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),...n.split(".").map(l=>Buffer.concat([Buffer.from([l.length]),Buffer.from(l)])),Buffer.from([0,0,1,0,1])]);
const done=(m)=>{let o=12;while(m[o])o+=m[o]+1;o+=5;const an=m.readUInt16BE(6);for(let i=0;i<an;i++){if((m[o]&0xc0)===0xc0)o+=2;else{while(m[o])o+=m[o]+1;o++}const type=m.readUInt16BE(o),len=m.readUInt16BE(o+8);o+=10;if(type===1){process.stdout.write([...m.subarray(o,o+4)].join("."));process.exit(0)}o+=len}process.stderr.write("no answer");process.exit(1)};
const fail=(e)=>{process.stderr.write(e.code||String(e));process.exit(1)};setTimeout(()=>fail({code:"ETIMEDOUT"}),1500);
if(t==="tcp"){const c=require("net").connect(53,s);let b=Buffer.alloc(0);c.on("error",fail);c.on("connect",()=>{const l=Buffer.alloc(2);l.writeUInt16BE(q.length);c.write(Buffer.concat([l,q]))});c.on("data",d=>{b=Buffer.concat([b,d]);if(b.length>=2&&b.length>=2+b.readUInt16BE(0))done(b.subarray(2))})}
else{const u=require("dgram").createSocket("udp4");u.on("error",fail);u.on("message",done);u.send(q,53,s)}`;

/** Asks `server` for PROBE_NAME's address from inside a namespace: the address, or an error. */
export async function askName(
  ns: string,
  server: string,
  transport: "udp" | "tcp" = "udp",
): Promise<{ ok: boolean; text: string }> {
  const r = await execa(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", ASK, server, PROBE_NAME, transport],
    { reject: false },
  );
  return r.exitCode === 0
    ? { ok: true, text: r.stdout }
    : { ok: false, text: r.stderr.trim() || `exit ${r.exitCode}` };
}
