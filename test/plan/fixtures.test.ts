import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { computeRestore } from "../../src/apply/rollback/restore.js";
import { snapshotSchema } from "../../src/apply/rollback/snapshot.js";
import type { SiteState } from "../../src/compile/desired.js";
import { diff } from "../../src/plan/diff.js";
import type { LiveState, Ownership, Plan } from "../../src/plan/types.js";
import { decode, encode } from "./fixture-json.js";

/**
 * The pure core on recorded cases, one folder each (made on the fake kernel, then edited by
 * hand where a case needed it). A diff case holds desired.json, live.json and ownership.json
 * and expects plan.json; a restore case holds snapshot.json (as a pending `--confirm` keeps it),
 * live.json (the state after the failure), owned-now.json and plan.json (for its site) and
 * expects restore.json. A diff case may hold in-force.json too: the state of the policy in force,
 * by which the plan names the nftables rules a change touches. `UPDATE_FIXTURES=1`
 * rewrites the expectations: review the diff like code.
 */

const ROOT = path.join(import.meta.dirname, "fixtures");
const UPDATE = process.env.UPDATE_FIXTURES === "1";

function check(dir: string, file: string, actual: unknown): void {
  const at = path.join(dir, file);
  if (UPDATE || !existsSync(at)) writeFileSync(at, encode(actual));
  // Compared as the text on disk, so a failure shows the lines that changed.
  expect(encode(actual)).toBe(readFileSync(at, "utf8"));
}

describe("fixture cases", () => {
  for (const name of readdirSync(ROOT).sort()) {
    const dir = path.join(ROOT, name);
    const read = <T>(file: string) => decode<T>(readFileSync(path.join(dir, file), "utf8"));
    if (existsSync(path.join(dir, "snapshot.json"))) {
      it(`${name}: restore script`, () => {
        const snapshot = snapshotSchema.parse(
          JSON.parse(readFileSync(path.join(dir, "snapshot.json"), "utf8")),
        );
        const script = computeRestore(
          snapshot,
          read<LiveState>("live.json"),
          read<Pick<Ownership, "links" | "addresses">>("owned-now.json"),
          read<Plan>("plan.json").site,
        );
        check(dir, "restore.json", script);
      });
    } else {
      it(`${name}: plan`, () => {
        // The state of the policy in force, where a case names the rules a change touches.
        const inForce = existsSync(path.join(dir, "in-force.json"))
          ? read<SiteState>("in-force.json")
          : undefined;
        const plan = diff(
          read<SiteState>("desired.json"),
          read<LiveState>("live.json"),
          read<Ownership>("ownership.json"),
          () => inForce,
        );
        check(dir, "plan.json", plan);
      });
    }
  }
});
