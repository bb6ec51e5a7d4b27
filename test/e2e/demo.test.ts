import { execa } from "execa";
import { expect, it } from "vitest";
import { describeLive } from "../support/layers.js";

const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

async function leftovers(): Promise<string[]> {
  const ns = (await execa("ip", ["netns", "list"])).stdout
    .split("\n")
    .filter((l) => l.startsWith("npd-"));
  const procs = (
    await execa(
      "pgrep",
      [
        "-af",
        "wireguard-go (-f )?npd|netpol.js watch .*netpol-demo|caddy run --config /run/netpol-demo",
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
    const run = await netpol(["demo"]);
    try {
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain("all 15 checks passed");
      expect(run.stdout).toMatch(/plan for site home .*\n {2}in sync/);
    } finally {
      const downed = await netpol(["demo", "--down"]);
      expect(downed.stdout).toContain("lab removed");
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(await leftovers()).toEqual([]);
  }, 180_000);
});
