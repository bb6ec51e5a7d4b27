import { setTimeout as sleep } from "node:timers/promises";
import { monitorLinks } from "../system/iproute2/monitor.js";
import type { Runner } from "../system/runner.js";

/** How a round ended: done; refused because another apply holds the site (try again soon); failed. */
export type Round = "done" | "busy" | "failed";

const SETTLE_MS = 100;
const BUSY_RETRY_MS = 250;
const FAILED_RETRIES_MS = [1_000, 2_000, 4_000];

/**
 * Re-applies when links change. A route through a device dies with the device, so when an
 * external tunnel (OpenVPN's tun, say) comes back, its egress route must be put back; the
 * fail-closed route holds the line meanwhile. Events are coalesced: any that arrive while a
 * round runs make one more round after it, and a round refused because another apply holds
 * the lock is tried again once the lock is free, so no wake-up is lost.
 */
export async function watchLinks(
  runner: Runner,
  round: () => Promise<Round>,
  signal: AbortSignal,
): Promise<void> {
  let dirty = false;
  let loop: Promise<void> | undefined;
  const drain = async () => {
    let failures = 0;
    while (dirty && !signal.aborted) {
      dirty = false;
      const result = await round();
      if (result === "busy") {
        dirty = true;
        await sleep(BUSY_RETRY_MS);
      } else if (result === "failed" && failures < FAILED_RETRIES_MS.length) {
        dirty = true;
        await sleep(FAILED_RETRIES_MS[failures++]);
      } else if (result === "done") {
        failures = 0;
      }
    }
    loop = undefined;
  };
  let settle: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(settle);
    settle = setTimeout(() => {
      dirty = true;
      loop ??= drain();
    }, SETTLE_MS);
  };
  signal.addEventListener("abort", () => clearTimeout(settle));
  await monitorLinks(runner, changed, signal);
  await loop;
}
