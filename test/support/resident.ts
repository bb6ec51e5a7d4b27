import { setTimeout as sleep } from "node:timers/promises";
import type { Target } from "../../src/apply/target.js";
import type { Stamped } from "../../src/resident/events.js";
import { type FeedStart, inForceFeed } from "../../src/resident/policy-feed.js";
import { Resident, type ResidentOptions } from "../../src/resident/resident.js";

/**
 * A resident on `target`, fed from `start` (a policy it starts with, or only the key directory
 * of a site with none yet), running and watching once this resolves. Its events are collected;
 * `stop()` ends it and waits for its last round.
 */
export async function runningResident(
  target: Target,
  start: FeedStart,
  options: Pick<ResidentOptions, "wireguard"> = {},
) {
  const resident = new Resident({
    target,
    feed: inForceFeed(target, start),
    by: "test",
    intervalMs: 0,
    ...options,
  });
  const events: Stamped[] = [];
  resident.bus.on((e) => events.push(e));
  const abort = new AbortController();
  const running = resident.run(abort.signal, "hash" in start ? start : undefined);
  const stop = async () => {
    abort.abort();
    await running;
  };
  let ended = false;
  void running.finally(() => {
    ended = true;
  });
  while (!events.some((e) => e.event === "watching")) {
    // A resident that ended before it watched: its error, not a test waiting for ever.
    if (ended) {
      await running;
      throw new Error("the resident ended before it watched");
    }
    await sleep(5);
  }
  return { resident, events, stop };
}
