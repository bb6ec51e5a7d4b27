import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { dryRun } from "../../src/apply/dry-run.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { labInput, siteTarget } from "../support/lab.js";
import { fakeHome, type LabHome } from "../support/lab-home.js";

// `netpol plan` reads the key files an apply would: a missing key, one others may read and
// someone else's key fail the plan with the apply's own code and message (before, they
// planned normally and only the apply noticed).
describe("a plan checks the key files an apply would read", () => {
  let home: LabHome;
  const file = () => path.join(home.lab.dir, "keys", "home.key");
  const target = () => siteTarget(home.lab, "home", home.node.runner());
  /** The plan's error and the apply's, for the key file as it is now. */
  const both = async () => {
    const planned = await dryRun(target(), labInput(home.lab, "home")).catch((e: unknown) => e);
    const applied = await applySite(target(), labInput(home.lab, "home"), "test").catch(
      (e: unknown) => e,
    );
    return { planned, applied };
  };

  beforeAll(async () => {
    home = await fakeHome();
  });
  afterAll(async () => {
    await home?.down();
  });

  it("plans normally with the right key", async () => {
    const { plan } = await dryRun(target(), labInput(home.lab, "home"));
    expect(plan.changes).not.toEqual([]);
  });

  it.each([
    ["missing", () => rm(file()), /key file .*home\.key does not exist/],
    ["readable by others", () => chmod(file(), 0o644), /key file .*home\.key has mode 644/],
    [
      "someone else's",
      async () => {
        await rm(file());
        await writePrivateKey(file(), generateKeyPair().privateKey);
      },
      /the key in keys\/home\.key does not match home's publicKey/,
    ],
  ])("fails the plan as apply fails, for a key file %s", async (_what, spoil, says) => {
    const good = await readFile(file(), "utf8");
    await spoil();
    try {
      const { planned, applied } = await both();
      expect(planned).toMatchObject({
        code: "NETPOL_E_KEY_FILE",
        message: expect.stringMatching(says),
      });
      expect(applied).toMatchObject({ code: "NETPOL_E_KEY_FILE" });
      expect((planned as Error).message).toBe((applied as Error).message);
    } finally {
      await rm(file(), { force: true });
      await writeFile(file(), good, { mode: 0o600 });
    }
  });
});
