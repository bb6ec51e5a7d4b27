import { execa } from "execa";
import { expect, it } from "vitest";
import { describeLive } from "../support/layers.js";

// A name of its own, so a demo someone runs by hand (or another test run) is never touched.
const NAME = `t${Math.random()
  .toString(36)
  .slice(2, 6)
  .replace(/[^a-z0-9]/g, "x")}`;

const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

async function leftovers(): Promise<string[]> {
  const ns = (await execa("ip", ["netns", "list"])).stdout
    .split("\n")
    .filter((l) => l.startsWith(`${NAME}-`));
  const procs = (
    await execa(
      "pgrep",
      [
        "-af",
        `wireguard-go (-f )?${NAME}|netpol.js (watch|serve) .*netpol-demo-${NAME}|caddy run --config /run/netpol-demo-${NAME}`,
      ],
      {
        reject: false,
      },
    )
  ).stdout
    .split("\n")
    .filter((l) => l && !l.includes("pgrep"));
  return [...ns, ...procs];
}

// The README's first quick-start command, as a newcomer runs it.
describeLive("netpol demo", () => {
  it("builds the lab, passes every traffic check, and --down leaves nothing behind", async () => {
    const run = await netpol(["demo", "--name", NAME]);
    try {
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain("all 17 checks passed");
      expect(run.stdout).toMatch(/plan for site home .*\n {2}in sync/);
    } finally {
      const downed = await netpol(["demo", "--down", "--name", NAME]);
      expect(downed.stdout).toContain("lab removed");
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(await leftovers()).toEqual([]);
  }, 180_000);
});
