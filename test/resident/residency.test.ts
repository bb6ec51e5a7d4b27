import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { targetOf } from "../../src/apply/target.js";
import { holdResidency } from "../../src/resident/residency.js";
import { FakeMachine } from "../support/fake-kernel/machine.js";
import { fakeNode } from "../support/node.js";

/**
 * One resident process per site: watch, serve and the agent each take the site before they
 * start, and a second one, from any state directory, is refused with the first one named. A
 * holder that died is taken over; one that stopped leaves the site free.
 */
describe("one resident per site", () => {
  const machine = new FakeMachine("fake");
  const node = fakeNode();
  let dir = "";
  const target = (stateDir: string, host = machine.host()) =>
    targetOf(node.kernel.runner("site1"), path.join(dir, stateDir), { host });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-residency-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a second resident on the namespace, naming the first, from any state directory", async () => {
    const agent = machine.host();
    const release = await holdResidency(target("a", agent), "agent");
    for (const [stateDir, command] of [
      ["a", "serve"],
      ["b", "watch"],
    ] as const) {
      await expect(holdResidency(target(stateDir), command)).rejects.toMatchObject({
        code: "NETPOL_E_RESIDENT_RUNNING",
        message: expect.stringMatching(
          new RegExp(
            `^netpol ${command} not started: the resident process of namespace site1 is already running, \`netpol agent\` \\(pid ${agent.self().pid}, since .+, state in ${path.join(dir, "a")}\\);.*systemctl stop netpol-agent\\.service`,
          ),
        ),
      });
    }
    await release();
    // Stopped: the site is free for another.
    const serve = await holdResidency(target("b"), "serve");
    await serve();
  });

  it("takes over from a resident that died without a word", async () => {
    const watcher = machine.host();
    await holdResidency(target("a", watcher), "watch");
    machine.kill(watcher.self());
    const next = machine.host();
    const release = await holdResidency(target("b", next), "serve");
    await expect(holdResidency(target("a"), "agent")).rejects.toMatchObject({
      message: expect.stringContaining(`\`netpol serve\` (pid ${next.self().pid}`),
    });
    await release();
  });
});
