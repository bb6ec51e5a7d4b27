import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { applySite } from "../../../src/apply/apply.js";
import { recordPath } from "../../../src/apply/state/record.js";
import { targetOf } from "../../../src/apply/target.js";
import type { NetpolError } from "../../../src/errors.js";
import { policyHash } from "../../../src/policy/hash.js";
import { parsePolicy } from "../../../src/policy/load.js";
import type { Runner } from "../../../src/system/runner.js";
import { FakeKernel } from "../../support/fake-kernel/kernel.js";
import { failingWhen } from "../scenarios.js";

/**
 * The rollback snapshot takes a VLAN's parent and id from the kernel: a VLAN the apply removed
 * comes back as it was when a later step fails, without reading the policy in force again.
 */

const policyText = (vlan: boolean, vlanId = 6) =>
  `version: 1\nsites:\n  r:\n    interfaces:\n      - { name: eth0, kind: physical }\n${
    vlan ? `      - { name: eth0.6, kind: vlan, parent: eth0, vlanId: ${vlanId} }\n` : ""
  }`;
const policy = (vlan: boolean) => parsePolicy(policyText(vlan), "policy.yaml");

/** Fails the second read of the links (the read-back after the apply), calling `at` then. */
function failingReadBack(inner: Runner, at: () => void): Runner {
  let reads = 0;
  const readBack = (tool: string, args: readonly string[]) =>
    tool === "ip" && args.includes("-d") && ++reads === 2;
  const failing = (tool: string, args: readonly string[]) => {
    if (!readBack(tool, args)) return false;
    at();
    return true;
  };
  return failingWhen(failing, inner, "verify");
}

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("puts back a removed VLAN with its parent and id when the apply fails after removing it", async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "netpol-vlan-"));
  const kernel = new FakeKernel({ linkKinds: ["bridge", "veth", "vlan"] });
  kernel.plug("eth0");
  const target = (runner: Runner) => targetOf(runner, dir as string);
  const input = (vlan: boolean) => ({ ...policy(vlan), keyDir: dir as string, site: "r" });
  await applySite(target(kernel.runner()), input(true), "test");
  const vlan = () => kernel.state.links.find((l) => l.name === "eth0.6");
  expect(vlan()).toMatchObject({ kind: "vlan", link: "eth0", vlanId: 6, up: true });
  // The policy in force now names another id: a rollback that read it would make that one.
  const file = recordPath(target(kernel.runner()).files);
  const record = JSON.parse(await readFile(file, "utf8"));
  const other = policyText(true, 7);
  await writeFile(
    file,
    JSON.stringify({ ...record, policyText: other, policyHash: policyHash(other) }),
  );

  let atFailure: unknown = "not reached";
  const failing = failingReadBack(kernel.runner(), () => {
    atFailure = vlan();
  });
  const err = await applySite(target(failing), input(false), "test").catch((e: unknown) => e);
  expect((err as NetpolError).code).toBe("NETPOL_E_APPLY_FAILED");
  // The apply had removed it when the read-back failed: what is there now, the rollback made.
  expect(atFailure).toBeUndefined();
  expect(vlan()).toMatchObject({ kind: "vlan", link: "eth0", vlanId: 6, up: true });
});
