import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { armSystemdRevert } from "../../src/cli/revert-timer.js";
import { createRunner, withRun } from "../../src/system/runner.js";

// The --confirm revert armed a second time as a transient systemd timer, so it does not hang
// on one netpol process: the command line built, through a runner that records it. This
// machine's systemd is not PID 1, so the real check (no /run/systemd/system) skips it.
describe("the revert armed as a transient systemd timer", () => {
  const recording = () => {
    const calls: (readonly string[])[] = [];
    const runner = withRun(createRunner(), async (tool, args) => {
      calls.push([tool, ...args]);
      return { stdout: "", stderr: "" };
    });
    return { runner, calls };
  };
  const args = ["/usr/lib/netpol/bin/netpol.js", "revert-unconfirmed", "ID", "--state-dir", "/s"];

  it("runs systemd-run with a timer at the deadline that starts `netpol revert-unconfirmed ID`", async () => {
    const { runner, calls } = recording();
    expect(await armSystemdRevert(runner, [...args, "--netns", "vps"], "ID", 120, true)).toBe(true);
    expect(calls).toEqual([
      [
        "systemd-run",
        "--unit=netpol-revert-ID",
        "--on-active=120s",
        "--timer-property=AccuracySec=1s",
        "--collect",
        "--quiet",
        "--",
        process.execPath,
        ...args,
        "--netns",
        "vps",
      ],
    ]);
  });

  it("is skipped cleanly where systemd is not PID 1", async () => {
    const { runner, calls } = recording();
    expect(await armSystemdRevert(runner, args, "ID", 120, false)).toBe(false);
    // Here, as on this machine: the default looks at /run/systemd/system.
    const here = await armSystemdRevert(runner, args, "ID", 120);
    expect(here).toBe(existsSync("/run/systemd/system"));
    expect(calls).toHaveLength(here ? 1 : 0);
  });
});
