import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applySite } from "../../../src/apply/apply.js";
import type { PolicyInput } from "../../../src/apply/source/input.js";
import { fromText, validateHere } from "../../../src/apply/source/text.js";
import {
  BUILD,
  cachedInForce,
  cachePath,
  loadCached,
  saveCached,
} from "../../../src/apply/state/compiled-cache.js";
import { loadRecord } from "../../../src/apply/state/record.js";
import { compileSite } from "../../../src/compile/compile.js";
import { labPolicy } from "../../../src/lab/policy.js";
import { parsePolicy } from "../../../src/policy/load.js";
import { deleteFailClosedRoute, emptyInput, siteTarget } from "../../support/lab.js";
import { fakeHome, type LabHome } from "../../support/lab-home.js";
import { ownedSnapshot } from "../../support/node.js";

/**
 * The compiled state an apply leaves for the next apply of the same text: used only for exactly
 * that text, site, key dir and build; anything else, or a file in any doubt, is validated in full.
 */
describe("the compiled-policy cache", () => {
  let home: LabHome;
  beforeAll(async () => {
    home = await fakeHome();
  });
  afterAll(async () => {
    await home?.down();
  });
  const target = () => siteTarget(home.lab, "home", home.node.runner());
  const files = () => target().files;
  const text = () => labPolicy(home.lab.names, home.lab.keys);
  const read = (
    over: Partial<{ text: string; site: string; keyDir: string }> = {},
    build?: string,
  ): Promise<PolicyInput> => {
    const policy = {
      text: text(),
      name: "policy.yaml",
      site: "home",
      keyDir: home.lab.dir,
      ...over,
    };
    if (build === undefined) return fromText(files(), policy);
    return loadCached(files(), policy, build).then((cached) => cached ?? validateHere(policy));
  };
  const fromCache = (p: PolicyInput) => "cached" in p;

  beforeEach(async () => {
    await applySite(target(), emptyInput(home.lab, "home"), "test");
  });

  it("runs with a build id, as the bundle does (vitest.config.ts defines one)", () => {
    expect(BUILD).toBeTypeOf("string");
  });

  it("re-applies an unchanged policy from the state its last apply compiled, without validating it", async () => {
    const first = await read();
    expect(fromCache(first)).toBe(false);
    await applySite(target(), first, "test");
    const again = await read();
    expect(fromCache(again)).toBe(true);
    // The cached state is the compiled one, bigints and all.
    expect("desired" in again && again.desired).toEqual(
      compileSite(parsePolicy(text(), "policy.yaml").intent, "home"),
    );
    const before = await ownedSnapshot(home.node);
    const noop = await applySite(target(), again, "test");
    expect(noop.changed).toBe(false);
    expect(await ownedSnapshot(home.node)).toEqual(before);
    // And it still puts back what drifted.
    await deleteFailClosedRoute(home.node);
    const repaired = await applySite(target(), await read(), "test");
    expect(repaired.changed).toBe(true);
    expect(await ownedSnapshot(home.node)).toEqual(before);
  });

  it("validates in full a changed text, another site, another key dir or another build", async () => {
    await applySite(target(), await read(), "test");
    expect(fromCache(await read())).toBe(true);
    const moved = text().replace("table: 3", "table: 7");
    expect(fromCache(await read({ text: moved }))).toBe(false);
    expect(fromCache(await read({ text: `${text()}\n` }))).toBe(false);
    expect(fromCache(await read({ site: "vps" }))).toBe(false);
    expect(fromCache(await read({ keyDir: path.join(home.lab.dir, "keys") }))).toBe(false);
    expect(fromCache(await read({}, "another build"))).toBe(false);
    // A cache file written by another build is passed over too.
    const entry = JSON.parse(await readFile(cachePath(files()), "utf8")) as { build: string };
    await writeFile(cachePath(files()), JSON.stringify({ ...entry, build: "another build" }));
    expect(fromCache(await read())).toBe(false);
    // The new text, once applied, is the one cached; the old one is not any more.
    await applySite(target(), await read({ text: moved }), "test");
    expect(fromCache(await read({ text: moved }))).toBe(true);
    expect(fromCache(await read())).toBe(false);
  });

  it("gives the state of the policy in force for its record's text, site and build alone", async () => {
    await applySite(target(), await read(), "test");
    const record = await loadRecord(files());
    if (!record) throw new Error("no record after an apply");
    expect(await cachedInForce(files(), record)).toEqual(
      compileSite(parsePolicy(text(), "policy.yaml").intent, "home"),
    );
    expect(await cachedInForce(files(), { ...record, policyHash: "another" })).toBeUndefined();
    expect(await cachedInForce(files(), { ...record, site: "vps" })).toBeUndefined();
    expect(await cachedInForce(files(), record, "another build")).toBeUndefined();
  });

  it("passes over a corrupt cache without an error, and writes a good one at the next apply", async () => {
    await applySite(target(), await read(), "test");
    const good = await readFile(cachePath(files()), "utf8");
    const entry = JSON.parse(good) as { desired: { routes: Record<string, unknown>[] } };
    const corrupt = [
      "",
      "{",
      good.slice(0, good.length / 2),
      JSON.stringify({ ...entry, version: 1 }),
      // A field this netpol does not know: the state is not half read.
      JSON.stringify({
        ...entry,
        desired: {
          ...entry.desired,
          routes: entry.desired.routes.map((r) => ({ ...r, via: "x" })),
        },
      }),
      JSON.stringify({ ...entry, desired: { ...entry.desired, site: "vps" } }),
    ];
    for (const bad of corrupt) {
      await writeFile(cachePath(files()), bad);
      const input = await read();
      expect(fromCache(input), bad.slice(0, 40)).toBe(false);
      await applySite(target(), input, "test");
      expect(await readFile(cachePath(files()), "utf8")).toBe(good);
    }
  });

  it("applies all the same when the cache cannot be read or written", async () => {
    await rm(cachePath(files()), { force: true });
    await mkdir(cachePath(files()));
    try {
      const first = await read();
      expect(fromCache(first)).toBe(false);
      const applied = await applySite(target(), first, "test");
      expect(applied.changed).toBe(true);
      expect(fromCache(await read())).toBe(false);
    } finally {
      await rm(cachePath(files()), { recursive: true, force: true });
    }
  });

  it("still refuses an invalid policy while a valid older one is cached", async () => {
    await applySite(target(), await read(), "test");
    expect(fromCache(await read())).toBe(true);
    const broken = text().replace("table: 3", "table: banana");
    await expect(read({ text: broken })).rejects.toMatchObject({
      code: "NETPOL_E_POLICY_INVALID",
    });
  });

  it("holds no secret and is readable by its owner alone", async () => {
    await applySite(target(), await read(), "test");
    const cache = await readFile(cachePath(files()), "utf8");
    const keys = await Promise.all(
      ["home.key", "vps.key"].map((k) => readFile(path.join(home.lab.dir, "keys", k), "utf8")),
    );
    for (const key of keys) expect(cache).not.toContain(key.trim());
    expect((await stat(cachePath(files()))).mode & 0o777).toBe(0o600);
  });
});

describe("the compiled-policy cache's file", () => {
  it("gives back exactly the state compiled from each example policy, for each of its sites", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-cache-"));
    try {
      const files = { stateDir: dir, scope: "test", naming: {} };
      const examples = (await readdir("policies")).filter((f) => f.endsWith(".yaml"));
      expect(examples).not.toEqual([]);
      for (const example of examples) {
        const text = await readFile(path.join("policies", example), "utf8");
        const loaded = parsePolicy(text, example);
        for (const { name: site } of loaded.intent.sites) {
          const desired = compileSite(loaded.intent, site);
          await saveCached(files, { ...loaded, site, keyDir: dir }, desired, "test");
          const cached = await loadCached(files, { text, site, keyDir: dir }, "test");
          expect(cached?.desired, `${example} ${site}`).toEqual(desired);
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
