import { type Dirent, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { parsePolicy } from "../../src/policy/load.js";
import { renderSiteFiles } from "../../src/render/site-files.js";

/**
 * Every file `netpol render` writes for the example policies, checked byte for byte against
 * test/golden/<policy>/<site>/. Regenerate with UPDATE_GOLDEN=1 and review the diff like code.
 * Private keys are placeholders, so no secret ever lands in git.
 */

const root = fileURLToPath(new URL("../../", import.meta.url));
const goldenRoot = path.join(root, "test/golden");
const update = process.env.UPDATE_GOLDEN === "1";

const policyFiles = readdirSync(path.join(root, "policies"))
  .filter((f) => f.endsWith(".yaml"))
  .sort();

/** Relative paths of every file under dir, with '/' separators; empty if dir does not exist. */
function listFiles(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .flatMap((e) =>
      e.isDirectory() ? listFiles(path.join(dir, e.name)).map((f) => `${e.name}/${f}`) : [e.name],
    )
    .sort();
}

function renderPolicy(file: string) {
  const rel = `policies/${file}`;
  const { intent } = parsePolicy(readFileSync(path.join(root, rel), "utf8"), rel);
  return intent.sites.map((site) => {
    const state = compileSite(intent, site.name);
    const fakeKeys = new Map(
      state.wireguard.map((wg) => [wg.privateKeyFile, `<private key from ${wg.privateKeyFile}>`]),
    );
    return { site: site.name, files: renderSiteFiles(state, fakeKeys) };
  });
}

const rendered = policyFiles.map((file) => ({
  file,
  dir: path.join(goldenRoot, path.basename(file, ".yaml")),
  sites: renderPolicy(file),
}));

// Regenerating replaces the whole tree, so stale files and directories go too; the tests
// below then check what was written like any other run.
if (update) {
  rmSync(goldenRoot, { recursive: true, force: true });
  for (const { dir, sites } of rendered) {
    for (const { site, files } of sites) {
      for (const [name, content] of files) {
        const target = path.join(dir, site, name);
        mkdirSync(path.dirname(target), { recursive: true });
        writeFileSync(target, content);
      }
    }
  }
}

describe("golden files", () => {
  it("finds the example policies", () => {
    expect(policyFiles.length).toBeGreaterThanOrEqual(3);
  });

  it("has a golden directory for each policy and nothing else", () => {
    expect(readdirSync(goldenRoot).sort()).toEqual(
      policyFiles.map((f) => path.basename(f, ".yaml")).sort(),
    );
  });

  for (const { file, dir, sites } of rendered) {
    describe(file, () => {
      it("has a golden directory for each site and nothing else", () => {
        expect(readdirSync(dir).sort()).toEqual(sites.map((s) => s.site).sort());
      });

      for (const { site, files } of sites) {
        const siteDir = path.join(dir, site);

        it(`site ${site}: renders exactly the golden set of files`, () => {
          expect([...files.keys()].sort()).toEqual(listFiles(siteDir));
        });

        for (const [name, content] of files) {
          it(`site ${site}: ${name} matches byte for byte`, () => {
            const golden = readFileSync(path.join(siteDir, name));
            // Compare as text first for a readable diff, then as bytes.
            expect(content).toBe(golden.toString("utf8"));
            expect(Buffer.from(content, "utf8").equals(golden)).toBe(true);
          });
        }

        it(`site ${site}: no private key material in the golden files`, () => {
          for (const content of files.values()) {
            for (const line of content.split("\n")) {
              if (/^\s*PrivateKey\s*=/.test(line)) {
                expect(line).toMatch(/^PrivateKey = <private key from [^>]+>$/);
              }
            }
          }
        });
      }
    });
  }
});
