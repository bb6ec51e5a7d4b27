import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { relayFilesOf } from "../../src/apply/state/files.js";
import type { Lab } from "../../src/lab/lab.js";
import { eventually, httpGetHost } from "../../src/lab/probe.js";
import { kill, startInNetns } from "../../src/lab/processes.js";
import { ADDR } from "../../src/lab/topology.js";
import { dualStack, V6 } from "../support/dual-stack.js";
import { emptyInput, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

/**
 * The PROXY protocol through netpol's relay (haproxy, started by netpol in the VPS namespace):
 * a home server that reads the header (test/support/proxy-protocol-server.mjs) answers with the
 * client address it was given. A raw TCP port on both of the VPS's addresses, to the home's
 * IPv4 address over the IPv4 tunnel, and an HTTP service through Caddy.
 */
const SERVER = fileURLToPath(new URL("../support/proxy-protocol-server.mjs", import.meta.url));
const HOME_PORT = 8089;
const PUBLISHED = 8088;
const HOST = "pp.example.org";

const withRelay =
  (version = "v2") =>
  (t: string) =>
    `${t}  - { name: pp, kind: tcp, publishOn: vps, port: ${PUBLISHED}, target: "${ADDR.lan1Host}:${HOME_PORT}", proxyProtocol: ${version} }\n  - { name: ppweb, kind: http, publishOn: vps, hostname: ${HOST}, target: "${ADDR.lan1Host}:${HOME_PORT}", proxyProtocol: v1 }\n`;

/** Connects from a namespace, sends a line as an SSH client would, and returns what came back. */
const TCP_ASK = `const s=require("net").connect(Number(process.argv[2]),process.argv[1],()=>s.write("SSH-2.0-test\\r\\n"));let b="";s.setTimeout(3000,()=>{process.stderr.write("timeout");process.exit(1)});s.on("data",d=>b+=d);s.on("end",()=>process.stdout.write(b.trim()));s.on("error",e=>{process.stderr.write(e.code);process.exit(1)})`;

async function tcpAsk(ns: string, host: string, port: number): Promise<string> {
  const r = await execa(
    "ip",
    ["netns", "exec", ns, process.execPath, "-e", TCP_ASK, host, String(port)],
    {
      reject: false,
    },
  );
  return r.exitCode === 0 ? r.stdout : `failed: ${r.stderr}`;
}

/** Whether the process runs: a zombie (this machine's init reaps late) has ended. */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
}

describeLive("the PROXY protocol through netpol's relay on the VPS", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let server: number | undefined;
  const www = () => lab.names.ns("www");
  const relayFiles = () => relayFilesOf(siteTarget(lab, "vps").files);
  const relayPid = async () =>
    Number.parseInt(await readFile(relayFiles().pid, "utf8").catch(() => ""), 10);

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    await dualStack(lab);
    server = startInNetns(lab.names.ns("lan1"), [process.execPath, SERVER, String(HOME_PORT)]);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", withRelay()), "test");
    await applySite(siteTarget(lab, "home"), labInput(lab, "home", withRelay()), "test");
  });
  afterAll(async () => {
    if (server !== undefined) kill(server);
    // Every haproxy reading this lab's relay configuration, the one a reload left included.
    const left = await execa("pgrep", ["-f", `haproxy .*${relayFiles().config}`], {
      reject: false,
    });
    for (const pid of left.stdout.split("\n").filter(Boolean)) kill(Number(pid));
    await down?.();
  });

  it("gives a home TCP server the client's IPv4 address in a PROXY v2 header", async () => {
    const said = await eventually(
      () => tcpAsk(www(), ADDR.vps, PUBLISHED),
      (s) => s.startsWith("v2"),
    );
    expect(said).toBe(`v2 ${ADDR.www}`);
  });

  it("answers on the VPS's IPv6 address too, and gives the IPv4 target the client's IPv6 address", async () => {
    expect(await tcpAsk(www(), V6.vps, PUBLISHED)).toBe(`v2 ${V6.www}`);
  });

  it("gives an HTTP upstream the PROXY header with the client's address, through Caddy and the relay", async () => {
    const r = await eventually(
      () => httpGetHost(www(), `http://${ADDR.vps}/`, HOST),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: `v1 ${ADDR.www}` });
    // One connection to the upstream per request: each client gets its own address, every time
    // (haproxy may write the header in a segment of its own; a 502 here was the home server
    // answering before the request had come, in one request of four under load).
    const answers: string[] = [];
    for (let i = 0; i < 20; i++) {
      answers.push((await httpGetHost(www(), `http://${ADDR.vps}/`, HOST)).text);
      answers.push((await httpGetHost(www(), `http://[${V6.vps}]/`, HOST)).text);
    }
    expect(answers).toEqual(
      Array.from({ length: 20 }, () => [`v1 ${ADDR.www}`, `v1 ${V6.www}`]).flat(),
    );
  });

  it("runs the relay as a haproxy whose pid netpol keeps, and plans nothing more after the apply", async () => {
    const pid = await relayPid();
    expect(await running(pid)).toBe(true);
    expect(await readFile(`/proc/${pid}/comm`, "utf8")).toBe("haproxy\n");
    const { plan } = await planSite(siteTarget(lab, "vps"), labInput(lab, "vps", withRelay()));
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([]);
  });

  it("puts a new configuration in force by a new relay taking the ports over", async () => {
    const before = await relayPid();
    const result = await applySite(
      siteTarget(lab, "vps"),
      labInput(lab, "vps", withRelay("v1")),
      "test",
    );
    expect(result.plan.changes.map((c) => `${c.kind} ${c.op}`)).toEqual(["relay set"]);
    const after = await relayPid();
    expect(after).not.toBe(before);
    expect(await tcpAsk(www(), ADDR.vps, PUBLISHED)).toBe(`v1 ${ADDR.www}`);
    // The old one had no connection left to finish: it is gone.
    expect(
      await eventually(
        () => running(before),
        (alive) => !alive,
      ),
    ).toBe(false);
  });

  it("stops the relay when the site goes down: its process is gone and the port closed", async () => {
    const pid = await relayPid();
    const { plan } = await applySite(siteTarget(lab, "vps"), emptyInput(lab, "vps"), "test");
    expect(plan.changes).toContainEqual(expect.objectContaining({ kind: "relay", op: "remove" }));
    expect(await running(pid)).toBe(false);
    expect(await tcpAsk(www(), ADDR.vps, PUBLISHED)).toMatch(/^failed/);
    await expect(readFile(relayFiles().config, "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
