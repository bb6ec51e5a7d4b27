import { afterEach, describe, expect, it, vi } from "vitest";
import { type Round, watchLinks } from "../../src/apply/watch.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";

describe("watchLinks on a fake kernel", () => {
  const stops: AbortController[] = [];
  afterEach(() => {
    for (const s of stops.splice(0)) s.abort();
  });

  /** Watches `kernel`, answering each round with the next of `answers` (then "done"). */
  function watching(kernel: FakeKernel, answers: Round[] = []) {
    const stop = new AbortController();
    stops.push(stop);
    let rounds = 0;
    const runner = kernel.runner();
    const done = watchLinks(
      runner,
      async () => {
        rounds++;
        return answers.shift() ?? "done";
      },
      stop.signal,
    );
    return { rounds: () => rounds, stop, done, runner };
  }

  it("runs a round when a link appears or goes, through a runner session, and ends when stopped", async () => {
    const kernel = new FakeKernel();
    const w = watching(kernel);
    expect(w.runner.spawned).toBe(1);
    kernel.must("ip", ["link", "add", "br7", "type", "bridge"]);
    await vi.waitFor(() => expect(w.rounds()).toBe(1));
    kernel.must("ip", ["link", "del", "br7"]);
    await vi.waitFor(() => expect(w.rounds()).toBe(2));
    w.stop.abort();
    await w.done;
  });

  it("tries a round refused as busy again, so the wake-up is not lost", async () => {
    const kernel = new FakeKernel();
    const w = watching(kernel, ["busy", "busy"]);
    kernel.must("ip", ["link", "add", "br8", "type", "bridge"]);
    await vi.waitFor(() => expect(w.rounds()).toBe(3), { timeout: 5_000 });
  });

  it("ends with the monitor's failure", async () => {
    const kernel = new FakeKernel();
    const runner = kernel.runner();
    const broken = { ...runner, session: () => Promise.reject(new Error("monitor died")) };
    await expect(
      watchLinks(broken, async () => "done", new AbortController().signal),
    ).rejects.toThrow("monitor died");
  });
});
