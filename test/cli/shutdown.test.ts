import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { shutdownOnSignals } from "../../src/cli/shutdown.js";
import { ENDPOINT, startEtcd } from "../support/etcd-member.js";
import { beforeAllLive, describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { smallSite } from "../support/small-site.js";

describe("a resident's shutdown on SIGTERM", () => {
  const said: string[] = [];
  const exits: number[] = [];
  afterEach(() => {
    said.length = 0;
    exits.length = 0;
  });
  let from = new EventEmitter();
  const options = () => {
    from = new EventEmitter();
    return {
      boundMs: 50,
      say: (l: string) => said.push(l),
      exit: (c: number) => exits.push(c),
      from,
    };
  };

  it("aborts its signal at SIGTERM, and exits 1 naming the steps still pending past its bound", async () => {
    const shutdown = shutdownOnSignals("serve", options());
    const done = shutdown.step("a step that ends", sleep(10));
    void shutdown.step("a step that hangs", new Promise(() => undefined));
    expect(shutdown.signal.aborted).toBe(false);
    from.emit("SIGTERM", "SIGTERM");
    expect(shutdown.signal.aborted).toBe(true);
    await done;
    await sleep(150);
    expect(exits).toEqual([1]);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain("netpol serve: SIGTERM: the shutdown did not end within 0.05 s");
    expect(said[0]).toContain("still waiting for: a step that hangs)");
    expect(said[0]).not.toContain("a step that ends");
  });

  it("keeps its handlers (execa's clean-up would kill the process again), and exits at a second signal", () => {
    const shutdown = shutdownOnSignals("watch", options());
    from.emit("SIGINT", "SIGINT");
    expect(shutdown.signal.aborted).toBe(true);
    expect(from.listenerCount("SIGTERM")).toBe(1);
    expect(exits).toEqual([]);
    from.emit("SIGTERM", "SIGTERM");
    expect(exits).toEqual([1]);
    expect(said).toEqual(["netpol watch: SIGTERM again: exiting now, as a killed process would"]);
  });
});

const TOKEN = "shutdown-token-0123456789abcdef";
/** Longer than any shutdown takes on a loaded machine, shorter than the lab's SIGKILL is not relied on. */
const GONE_WITHIN_MS = 15_000;

interface Started {
  readonly child: ChildProcess;
  /** Resolves with how it ended. */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** netpol with `args`; inside `ns` when given (`ip netns exec` execs it: the PID is netpol's). */
function start(args: readonly string[], ns?: Netns): Started {
  const argv = [process.execPath, "bin/netpol.js", ...args];
  const [command = "", ...rest] = ns ? ["ip", "netns", "exec", ns.name, ...argv] : argv;
  const child = spawn(command, rest, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((settle) =>
    child.on("exit", (code, signal) => settle({ code, signal })),
  );
  return { child, ended, output: () => out };
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The processes in the namespace but `spared` ones: a resident's tool sessions and probers run there. */
async function pidsIn(ns: Netns, spared: readonly string[] = []): Promise<string[]> {
  const r = await execa("ip", ["netns", "pids", ns.name], { reject: false });
  const pids = r.stdout.split("\n").filter(Boolean);
  const names = await Promise.all(
    pids.map((pid) => readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")),
  );
  return pids.filter((_, i) => !spared.includes(names[i]?.trim() ?? ""));
}

/** What the tests started and have not seen end: killed after each suite. */
const running = new Set<Started>();
async function killRunning(): Promise<void> {
  for (const s of running) s.child.kill("SIGKILL");
  await Promise.all([...running].map((s) => s.ended));
  running.clear();
}

/**
 * Sends SIGTERM by PID once `moment` resolves; resolves with how long the process took to end
 * by itself, after checking that it did and that it left no process in `ns` (but `spared`).
 */
async function stopAt(
  s: Started,
  moment: Promise<unknown>,
  ns: Netns,
  { handled = true, spared = [] }: { handled?: boolean; spared?: readonly string[] } = {},
): Promise<number> {
  running.add(s);
  await moment;
  const sent = performance.now();
  process.kill(s.child.pid ?? 0, "SIGTERM");
  const gone = await Promise.race([s.ended, sleep(GONE_WITHIN_MS).then(() => undefined)]);
  const took = performance.now() - sent;
  expect(gone, `still running ${GONE_WITHIN_MS} ms after SIGTERM:\n${s.output()}`).toBeDefined();
  running.delete(s);
  // Ended by its own shutdown (0); by the signal itself only when it may have come before the
  // handler was installed (execa's clean-up once re-raised it past the handler, mid-apply).
  expect(gone?.code === 0 || (!handled && gone?.signal === "SIGTERM"), s.output()).toBe(true);
  await until(
    async () => (await pidsIn(ns, spared)).length === 0,
    "the namespace's processes to end",
    5000,
  );
  return took;
}

const jitter = (ms: number) => sleep(Math.random() * ms);

// SIGTERM at random instants: before the handler, right at listening, while a page's event
// stream opens or stays open (as a browser keeps one), mid-apply, mid-status, mid-reconcile.
// Each one must end the process by itself (by PID, no SIGKILL after), leaving no process in
// the namespace.
describeLive("netpol serve and watch on SIGTERM, live", () => {
  let ns: Netns;
  let dir: string;
  let policy: string;
  const port = 21000 + (process.pid % 20000);
  const base = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAllLive(async () => {
    ns = await createNetns("npsig");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-sigterm-"));
    policy = path.join(dir, "policy.yaml");
    await smallSite(ns, policy);
    await writeFile(path.join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 });
    const site = ["--site", "vps", "--netns", ns.name, "--state-dir", dir];
    await execa(process.execPath, ["bin/netpol.js", "apply", policy, ...site]);
  }, 60_000);
  afterAll(async () => {
    await killRunning();
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const serve = () =>
    start([
      "serve",
      "--site",
      "vps",
      "--listen",
      `127.0.0.1:${port}`,
      "--netns",
      ns.name,
      "--state-dir",
      dir,
      "--key-dir",
      dir,
      "--token-file",
      path.join(dir, "token"),
      "--interval",
      "1",
    ]);
  const watch = () =>
    start([
      "watch",
      policy,
      "--site",
      "vps",
      "--netns",
      ns.name,
      "--state-dir",
      dir,
      "--interval",
      "1",
    ]);
  const listening = (s: Started) =>
    until(() => s.output().includes("Server listening"), "serve to listen");
  const requested = (s: Started, url: string) =>
    until(() => s.output().includes(`"url":"${url}"`), `the request for ${url}`);

  /** An open request the client never ends (a page's event stream), aborted after the test. */
  const hold = (url: string, pending: AbortController[]) => {
    const abort = new AbortController();
    pending.push(abort);
    fetch(`${base}${url}`, { headers: auth, signal: abort.signal })
      .then((r) => r.body?.pipeTo(new WritableStream()))
      .catch(() => undefined);
  };

  it("serve ends by itself at any instant, leaving no process behind", async () => {
    const clients: AbortController[] = [];
    const times: number[] = [];
    const early = () => jitter(1500);
    const scenarios: ((s: Started) => Promise<unknown>)[] = [
      // Right after start: before the handler, or while the resident's first round runs.
      early,
      (s) => listening(s),
      // A page's stream asked for just then: its first snapshot comes after the close began.
      async (s) => {
        await listening(s);
        hold("/events", clients);
        await requested(s, "/events");
      },
      // A page's stream open, as a browser keeps it.
      async (s) => {
        await listening(s);
        hold("/events", clients);
        await requested(s, "/events");
        await jitter(300);
      },
      // An apply through the resident under way.
      async (s) => {
        await listening(s);
        void fetch(`${base}/reapply`, { method: "POST", headers: auth }).catch(() => undefined);
        await requested(s, "/reapply");
      },
      // A status read under way, and reconciles every second.
      async (s) => {
        await listening(s);
        hold("/status", clients);
        await jitter(1500);
      },
    ];
    try {
      for (const scenario of [...scenarios, ...scenarios]) {
        const s = serve();
        times.push(await stopAt(s, scenario(s), ns, { handled: scenario !== early }));
      }
    } finally {
      for (const c of clients) c.abort();
    }
    console.log(`serve: SIGTERM to exit, ms: ${times.map((t) => Math.round(t)).join(" ")}`);
  }, 240_000);

  it("watch ends by itself at any instant, leaving no process behind", async () => {
    for (const ms of [0, 400, 800, 1500, 2500, 3500]) {
      const s = watch();
      await stopAt(s, jitter(ms), ns, { handled: false });
    }
    // Once it watches, its handler is there: its own shutdown, mid-reconcile at times.
    for (const ms of [0, 500, 1000]) {
      const s = watch();
      const watching = until(() => s.output().includes("watching links"), "watch to watch");
      await stopAt(
        s,
        watching.then(() => jitter(ms)),
        ns,
      );
    }
  }, 120_000);
});

// The fleet agent hosts the same resident, and with --listen the same HTTP front door.
describeLive("netpol agent --listen on SIGTERM, live", () => {
  let ns: Netns;
  let dir: string;
  let etcd: { stop(): Promise<void> } | undefined;
  const clients = new Set<ChildProcess>();

  beforeAllLive(async () => {
    ns = await createNetns("npsga");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-sigterm-agent-"));
    const policy = path.join(dir, "policy.yaml");
    await smallSite(ns, policy);
    await writeFile(path.join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 });
    etcd = await startEtcd(ns.name, dir);
    const r = await execa("ip", [
      ...["netns", "exec", ns.name, process.execPath, "bin/netpol.js", "publish", policy],
      ...["--etcd", ENDPOINT],
    ]);
    expect(r.exitCode).toBe(0);
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) c.kill("SIGKILL");
    await killRunning();
    await etcd?.stop();
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const agent = () =>
    start(
      [
        ...["agent", "--site", "vps", "--etcd", ENDPOINT, "--key-dir", dir],
        ...["--state-dir", path.join(dir, "state"), "--netns", ns.name, "--interval", "1"],
        ...["--listen", "127.0.0.1:9470", "--token-file", path.join(dir, "token")],
      ],
      ns,
    );
  /**
   * A page's event stream, from inside the namespace, held until the suite ends: a client that
   * keeps its connection alive after the stream ends, as browsers and fetch do.
   */
  const stream = () => {
    const client = `fetch("http://127.0.0.1:9470/events", { headers: { authorization: "Bearer ${TOKEN}" } }).then((r) => r.body.pipeTo(new WritableStream())).catch(() => {}); setInterval(() => {}, 60000);`;
    const held = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", client], {
      stdio: "ignore",
    });
    clients.add(held);
    return held;
  };
  const listening = (s: Started) =>
    until(() => s.output().includes("Server listening"), "the agent to listen");

  it("agent ends by itself at any instant, leaving no process behind", async () => {
    const early = () => jitter(2000);
    const scenarios: ((s: Started) => Promise<unknown>)[] = [
      early,
      (s) => listening(s),
      // A page's stream asked for just then, and one open.
      async (s) => {
        await listening(s);
        stream();
        await until(() => s.output().includes(`"url":"/events"`), "the stream's request");
      },
      async (s) => {
        await listening(s);
        stream();
        await until(() => s.output().includes(`"url":"/events"`), "the stream's request");
        await jitter(1500);
      },
    ];
    for (const scenario of scenarios) {
      const s = agent();
      // etcd, and the test's own clients (node), are the test's to end.
      const spared = ["etcd", "node"];
      await stopAt(s, scenario(s), ns, { handled: scenario !== early, spared });
      for (const c of clients) c.kill();
    }
  }, 240_000);
});
