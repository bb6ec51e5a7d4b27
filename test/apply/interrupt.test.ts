import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { stateFile } from "../../src/apply/state/files.js";
import { targetOf } from "../../src/apply/target.js";
import { NetpolError } from "../../src/errors.js";
import { type Runner, withRun } from "../../src/system/runner.js";
import { emptyInput, labInput } from "../support/lab.js";
import { fakeHome, type LabHome } from "../support/lab-home.js";
import { ownedSnapshot } from "../support/node.js";

/**
 * An apply asked to stop (SIGINT/SIGTERM from the CLI) as it is about to start its command
 * `n + 1`, at every n: it stops there, rolls back through its rollback and leaves the state
 * it found, no journal; or, past its last safe point, finishes in sync.
 */
describe("an apply asked to stop at each of its safe points, on a fake kernel", () => {
  let home: LabHome;
  beforeAll(async () => {
    home = await fakeHome();
  });
  afterAll(async () => {
    await home?.down();
  });

  const target = (runner: Runner = home.node.runner()) => targetOf(runner, `${home.lab.dir}/state`);
  const policy = () => labInput(home.lab, "home");

  /** A runner counting commands, and a stop that answers SIGTERM once `n` have started. */
  function stopAfter(n: number) {
    const inner = home.node.runner();
    let ran = 0;
    const runner = withRun(inner, (tool, args, options) => {
      ran++;
      return inner.run(tool, args, options);
    });
    return { runner, stop: () => (ran >= n ? "SIGTERM" : undefined) };
  }

  it("rolls back to the state it found, or changes nothing, or finishes in sync", async () => {
    await applySite(target(), emptyInput(home.lab, "home"), "test");
    const before = await ownedSnapshot(home.node);
    const whole = home.node.runner();
    await applySite(target(whole), policy(), "test");
    const after = await ownedSnapshot(home.node);
    await applySite(target(), emptyInput(home.lab, "home"), "test");
    const outcomes = new Set<string>();
    for (let n = 0; n <= whole.spawned; n++) {
      const { runner, stop } = stopAfter(n);
      const t = target(runner);
      const outcome = await applySite(t, policy(), "stopped", { stop }).then(
        () => "finished",
        (err: unknown) => {
          expect(err, `stopped at ${n}`).toBeInstanceOf(NetpolError);
          expect((err as NetpolError).code, (err as Error).message).toBe("NETPOL_E_INTERRUPTED");
          return (err as Error).message;
        },
      );
      expect(existsSync(stateFile(t.files, ".journal.json")), `journal at ${n}`).toBe(false);
      if (outcome === "finished") {
        expect((await planSite(target(), policy())).plan.changes).toEqual([]);
        expect(await ownedSnapshot(home.node)).toEqual(after);
        await applySite(target(), emptyInput(home.lab, "home"), "test");
      } else {
        expect(outcome).toMatch(
          /^interrupted by SIGTERM (during the change: rolled back, the previous state was restored|before any change: nothing applied)$/,
        );
        expect(await ownedSnapshot(home.node), `state after a stop at ${n}`).toEqual(before);
      }
      outcomes.add(outcome.replace(/,.*| before.*/, ""));
    }
    expect([...outcomes].sort()).toEqual([
      "finished",
      "interrupted by SIGTERM",
      "interrupted by SIGTERM during the change: rolled back",
    ]);
  });
});
