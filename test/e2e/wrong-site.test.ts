import { readFile } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeLive } from "../support/layers.js";
import { type CrashSite, crashSite } from "../support/state.js";

/**
 * Issue 18, item 8, through the CLI: `apply --site far --netns <home>` and its plan are refused
 * with the sites named and the override; `--replace-site` is what lets a plan through.
 */
describeLive("the wrong site on the right namespace, from the command line", () => {
  let site: CrashSite;
  let file: string;
  beforeAll(async () => {
    site = await crashSite();
    file = await site.file("policy.yaml", site.policy(1));
  });
  afterAll(async () => {
    await execa(process.execPath, ["bin/netpol.js", "down", ...site.cliArgs(file).slice(3)], {
      reject: false,
    });
    await site?.destroy();
  });
  const netpol = (verb: string, siteName: string, ...extra: string[]) =>
    execa(
      process.execPath,
      [
        "bin/netpol.js",
        verb,
        file,
        "--site",
        siteName,
        "--netns",
        site.ns.name,
        "--state-dir",
        site.stateDir,
        ...extra,
      ],
      { reject: false },
    );
  const recordedSite = async () =>
    JSON.parse(await readFile(path.join(site.stateDir, `netns-${site.ns.name}.json`), "utf8"))
      .site as string;

  it("refuses plan and apply of another site, naming both and --replace-site; the flag lets the plan through", async () => {
    const applied = await netpol("apply", "home");
    expect(applied.exitCode, applied.stderr).toBe(0);
    for (const verb of ["plan", "apply"]) {
      const refused = await netpol(verb, "far");
      expect(refused.exitCode, verb).toBe(1);
      expect(refused.stderr).toContain(`runs site "home"`);
      expect(refused.stderr).toContain(`this policy is for site "far"`);
      expect(refused.stderr).toContain("--replace-site");
    }
    expect(await recordedSite()).toBe("home");
    const renamed = await netpol("plan", "far", "--replace-site");
    expect(renamed.stderr).not.toContain("runs site");
    expect(renamed.exitCode, renamed.stderr).toBe(2);
  });
});
