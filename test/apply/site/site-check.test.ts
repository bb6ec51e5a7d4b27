import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applySite } from "../../../src/apply/apply.js";
import { takeDown } from "../../../src/apply/down.js";
import { planSite } from "../../../src/apply/site/plan-site.js";
import { loadRecord } from "../../../src/apply/state/record.js";
import { emptyInput, labInput, siteTarget } from "../../support/lab.js";
import { fakeHome, type LabHome } from "../../support/lab-home.js";
import { ownedSnapshot } from "../../support/node.js";

/**
 * Issue 18, item 8: the wrong site on the right machine. `apply --site vps --netns <home>` would
 * remove everything home made there (the tunnel a push talks over included): refused, naming
 * both sites and the override; a real rename says `--replace-site`.
 */
describe("a namespace runs the site its record names (fake kernel)", () => {
  let home: LabHome;
  beforeAll(async () => {
    home = await fakeHome();
  });
  afterAll(async () => {
    await home?.down();
  });
  const target = () => siteTarget(home.lab, "home", home.node.runner());
  beforeEach(async () => {
    await takeDown(target(), "test");
    await applySite(target(), labInput(home.lab, "home"), "test");
  });

  it("refuses to plan or apply another site, naming both and the override; nothing changes", async () => {
    const before = await ownedSnapshot(home.node);
    const wrong = {
      code: "NETPOL_E_WRONG_SITE",
      message: expect.stringMatching(
        /netns-\S+ runs site "home" .*this policy is for site "vps".*--replace-site/s,
      ),
    };
    await expect(planSite(target(), labInput(home.lab, "vps"))).rejects.toMatchObject(wrong);
    await expect(applySite(target(), emptyInput(home.lab, "vps"), "test")).rejects.toMatchObject(
      wrong,
    );
    expect(await ownedSnapshot(home.node)).toEqual(before);
    expect((await loadRecord(target().files))?.site).toBe("home");
  });

  it("plans and applies another site with --replace-site, and records the new one", async () => {
    const planned = await planSite(target(), emptyInput(home.lab, "vps"), false, undefined, {
      replaceSite: true,
    });
    expect(planned.plan.changes).not.toEqual([]);
    await applySite(target(), emptyInput(home.lab, "vps"), "test", { replaceSite: true });
    expect((await loadRecord(target().files))?.site).toBe("vps");
    // Now home is the other site.
    await expect(planSite(target(), labInput(home.lab, "home"))).rejects.toMatchObject({
      code: "NETPOL_E_WRONG_SITE",
    });
  });

  it("lets any site start where `down` removed the record", async () => {
    await takeDown(target(), "test");
    await applySite(target(), emptyInput(home.lab, "vps"), "test");
    expect((await loadRecord(target().files))?.site).toBe("vps");
  });
});
