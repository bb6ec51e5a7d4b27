import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { targetOf } from "../../src/apply/target.js";
import { kill, startInNetns, stopWireguardGoByName } from "../../src/lab/processes.js";
import { parsePolicy } from "../../src/policy/load.js";
import { collectStatus } from "../../src/status/collect.js";
import { readCaddy } from "../../src/system/caddy/admin.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { createRunner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";

// A Caddy whose admin API answers writes slowly: a small TCP proxy in front of it (in the
// test's namespace) holds every POST for DELAY_MS before passing it on, and passes it on even
// after netpol gave up and closed the connection, as a slow Caddy that had the request would
// carry it out. netpol's admin timeout is shortened (NETPOL_CADDY_TIMEOUT_MS) below the delay.
// The apply must not claim "the previous state was restored"; once the late write lands,
// status must show the route it left as drift, though no policy is in force.
const TIMEOUT_MS = 2000;
const DELAY_MS = 6000;
const CADDY = "127.0.0.1:2019";
const SLOW = "127.0.0.1:2020";

// Caddy's admin server closes a connection that sends no header within 5 s: the proxy
// connects to it only when it passes the request on.
const SLOW_PROXY = `const net=require("net");net.createServer(c=>{let u,held=[],first=true;const pass=()=>{u=net.connect(2019,"127.0.0.1");u.on("error",()=>{}).on("data",d=>{if(!c.destroyed)c.write(d)}).on("end",()=>c.end());for(const x of held)u.write(x);held=null};c.on("error",()=>{}).on("data",d=>{if(held)held.push(d);else u.write(d);if(first){first=false;if(/^(POST|PATCH|PUT|DELETE) /.test(d.toString("latin1",0,8)))setTimeout(pass,${DELAY_MS});else pass()}})}).listen(2020,"127.0.0.1")`;

describeLive("a Caddy admin API that answers a write too late", () => {
  let ns: Netns;
  let dir: string;
  const pids: number[] = [];
  const wgName = `wl${uniqueSuffix()}`;
  const keys = { vps: generateKeyPair(), home: generateKeyPair() };
  const before = process.env.NETPOL_CADDY_TIMEOUT_MS;

  const policy = () =>
    ({
      ...parsePolicy(
        `version: 1
sites:
  vps:
    interfaces: [{ name: wan0, kind: physical }]
    proxy: { tls: "off", adminListen: "${SLOW}" }
  home:
    networks: [{ name: lan, cidr: 192.168.1.0/24, interface: lan0 }]
    interfaces: [{ name: lan0, kind: physical }]
tunnels:
  - name: t1
    members:
      - { site: vps, interface: ${wgName}, address: 10.97.0.1/24, endpoint: 198.51.100.2:51820, publicKey: ${keys.vps.publicKey}, privateKeyFile: vps.key }
      - { site: home, interface: h${wgName}, address: 10.97.0.2/24, publicKey: ${keys.home.publicKey}, privateKeyFile: home.key }
services:
  - { name: blog, kind: http, publishOn: vps, hostname: blog.example.org, target: "192.168.1.20:80" }
`,
        "late.yaml",
      ),
      keyDir: dir,
      site: "vps",
    }) as const;
  const target = () => targetOf(createRunner(ns.name), path.join(dir, "state"));
  /** The ids of the routes Caddy runs, read past the slow proxy. */
  const routeIds = async () => {
    const live = await readCaddy(createRunner(ns.name), CADDY);
    if (!live.reachable) throw new Error(live.error);
    return JSON.stringify(live.config).match(/netpol-[a-z]+/g) ?? [];
  };

  beforeAll(async () => {
    process.env.NETPOL_CADDY_TIMEOUT_MS = String(TIMEOUT_MS);
    ns = await createNetns("nplate");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-late-"));
    await writePrivateKey(path.join(dir, "vps.key"), keys.vps.privateKey);
    await ns.exec(["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan1"]);
    await ns.exec(["ip", "link", "set", "wan0", "up"]);
    await ns.exec(["ip", "address", "add", "198.51.100.2/24", "dev", "wan0"]);
    const home = path.join(dir, "caddy");
    await mkdir(home, { recursive: true, mode: 0o700 });
    const file = path.join(home, "own.json");
    // The proxy's address is one the admin API accepts as a Host (its DNS-rebinding check).
    const config = {
      admin: { listen: CADDY, origins: [CADDY, SLOW] },
      apps: { http: { servers: { mine: { listen: [":8080"], routes: [] } } } },
    };
    await writeFile(file, JSON.stringify(config), { mode: 0o600 });
    pids.push(
      startInNetns(ns.name, ["caddy", "run", "--config", file], {
        XDG_CONFIG_HOME: home,
        XDG_DATA_HOME: home,
      }),
    );
    pids.push(startInNetns(ns.name, [process.execPath, "-e", SLOW_PROXY]));
    for (let i = 0; i < 100; i++) {
      if ((await readCaddy(createRunner(ns.name), SLOW)).reachable) break;
      await sleep(100);
    }
  });
  afterAll(async () => {
    if (before === undefined) delete process.env.NETPOL_CADDY_TIMEOUT_MS;
    else process.env.NETPOL_CADDY_TIMEOUT_MS = before;
    for (const pid of pids) kill(pid);
    await stopWireguardGoByName([wgName]);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("does not say the previous state was restored, and status shows the route the late write left", async () => {
    expect((await readCaddy(createRunner(ns.name), SLOW)).reachable).toBe(true);
    const err = await applySite(target(), policy(), "test").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NETPOL_E_ROLLBACK_FAILED" });
    const message = String((err as Error).message);
    expect(message).not.toMatch(/previous state was restored/);
    expect(message).toMatch(
      /Caddy config: the proxy's state is unknown: Caddy at 127\.0\.0\.1:2020 still runs the config from before the apply, but never answered its write/,
    );
    // The write has not landed yet: Caddy still runs the config from before...
    expect(await routeIds()).toEqual([]);
    // ...and then it does, after netpol gave up on it.
    let ids: string[] = [];
    for (let i = 0; i < 100 && ids.length === 0; i++) {
      await sleep(100);
      ids = await routeIds();
    }
    expect(ids).toEqual(["netpol-blog"]);
    const status = await collectStatus(target(), Date.now());
    expect(status.policy).toBeNull();
    expect(status.drift).toMatchObject({
      inSync: false,
      changes: [
        {
          op: "remove",
          kind: "proxy",
          what: expect.stringContaining("netpol-blog: blog.example.org"),
        },
      ],
    });
    expect(status.drift?.warnings).toEqual([
      expect.stringMatching(
        /Caddy at 127\.0\.0\.1:2020 holds 1 route\(s\) tagged as netpol's that no record explains/,
      ),
    ]);
  });
});
