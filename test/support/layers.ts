import { accessSync, constants } from "node:fs";
import path from "node:path";
import { beforeAll, describe, it } from "vitest";

/**
 * Two layers of tests. The unit layer runs anywhere, as any user, in seconds: the pure core
 * and every scenario on the fake kernel. The live layer builds network namespaces and needs
 * root and the system tools; its suites skip themselves, saying why, where those are missing
 * or when `npm run test:unit` asked for the unit layer only.
 */

const TOOLS = ["ip", "nft", "wg", "wireguard-go", "sysctl"];

function onPath(tool: string): boolean {
  const dirs = `${process.env.PATH ?? ""}:/usr/sbin:/sbin`.split(":").filter(Boolean);
  return dirs.some((dir) => {
    try {
      accessSync(path.join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const unitLayerOnly = () => process.env.NETPOL_TEST_LAYER === "unit";

/** Why the live layer cannot run here, or undefined when it can. */
export function liveSkipReason(): string | undefined {
  if (unitLayerOnly()) return "unit layer only (npm run test:unit)";
  if (process.getuid?.() !== 0) return "needs root to build network namespaces";
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length > 0) return `needs ${missing.join(", ")} (bash deploy/install-deps.sh)`;
  return undefined;
}

/** `describe` for suites that need a real kernel: skipped, with the reason in its name, otherwise. */
export function describeLive(name: string, body: () => void): void {
  const reason = liveSkipReason();
  if (reason === undefined) describe(name, body);
  else describe.skip(`${name} [skipped: ${reason}]`, body);
}

/** `it` for one test that needs a real kernel or a real tool, in a suite that otherwise does not. */
export function itLive(name: string, body: () => Promise<void>, timeout?: number): void {
  const reason = liveSkipReason();
  if (reason === undefined) it(name, body, timeout);
  else it.skip(`${name} [skipped: ${reason}]`, body);
}

/** `beforeAll` for set-up only live suites use: nothing to build when they are skipped. */
export function beforeAllLive(body: () => Promise<void>, timeout?: number): void {
  beforeAll(async () => {
    if (liveSkipReason() === undefined) await body();
  }, timeout);
}

/**
 * `it` for an exhaustive pass through separate processes that needs no kernel but takes
 * seconds: the full run (`npm test`) runs it; the unit layer skips it, saying why, and relies
 * on `covered`, the fast test that asserts the same in-process.
 */
export function itFullRun(
  name: string,
  covered: string,
  body: () => Promise<void>,
  timeout?: number,
): void {
  if (!unitLayerOnly()) it(name, body, timeout);
  else it.skip(`${name} [skipped: full run only (npm test); the unit layer runs ${covered}]`, body);
}
