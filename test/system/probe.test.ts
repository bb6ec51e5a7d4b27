import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { probeTcp } from "../../src/system/probe.js";
import { createRunner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";

const OPEN = 18080;
const CLOSED = 18081;

describeLive("status's connect probe on a live namespace", () => {
  let ns: Netns;
  let server: ResultPromise | undefined;
  beforeAll(async () => {
    ns = await createNetns("probe");
    server = execa("ip", [
      "netns",
      "exec",
      ns.name,
      process.execPath,
      "-e",
      `require("net").createServer(s=>s.end()).listen(${OPEN},"127.0.0.1",()=>console.log("up"))`,
    ]);
    await new Promise<void>((ready) => server?.stdout?.once("data", () => ready()));
  });
  afterAll(async () => {
    if (server?.pid) process.kill(server.pid, "SIGKILL");
    await server?.catch(() => undefined);
    await ns?.destroy();
  });

  it("says of each of many targets, in one process, whether it takes a connection", async () => {
    const runner = createRunner(ns.name);
    // 600 targets: more than run at once, in an order the answers must keep.
    const targets = Array.from({ length: 600 }, (_, i) => ({
      host: i % 3 === 2 ? "192.0.2.1" : "127.0.0.1",
      port: i % 3 === 0 ? OPEN : CLOSED,
    }));
    const answers = await probeTcp(runner, targets);
    expect(answers).toEqual(targets.map((t) => t.port === OPEN && t.host === "127.0.0.1"));
    expect(runner.spawned).toBe(1);
  });
});
