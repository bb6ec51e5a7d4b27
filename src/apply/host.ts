import { setTimeout as sleep } from "node:timers/promises";
import { namespaceLockFile } from "./state/namespace-identity.js";
import {
  identityOf,
  isRunning,
  type ProcessIdentity,
  signalIfRunning,
  thisProcess,
} from "./state/process-identity.js";

/**
 * What the safety paths ask of the machine besides its network: the time, and which processes
 * run. Locks, journals and pending reverts name processes; deadlines and waits use the clock.
 * Passed in with the target, so a test can kill a process or move the clock on without waiting.
 */
export interface Host {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** The process this code runs in, as locks and journals name it. */
  self(): ProcessIdentity;
  identityOf(pid: number): ProcessIdentity | undefined;
  isRunning(who: ProcessIdentity): boolean;
  /** Stops the process if it is still the one named, never a pid since reused. */
  stop(who: ProcessIdentity): void;
  /**
   * The lock file every state directory shares for the namespace `netns` names (none: the one
   * this process runs in); undefined where that namespace is none of this machine's.
   */
  namespaceLock(netns: string | undefined): Promise<string | undefined>;
}

export const realHost: Host = {
  now: () => Date.now(),
  sleep: (ms) => sleep(ms),
  self: thisProcess,
  identityOf,
  isRunning,
  stop: (who) => signalIfRunning(who),
  namespaceLock: (netns) => namespaceLockFile(netns),
};

export const isoTime = (host: Host, plusMs = 0) => new Date(host.now() + plusMs).toISOString();
