import type { Runner } from "../runner.js";

/**
 * `ip -o monitor link` for as long as `signal` allows: `changed` is called for each line, one
 * per link that appeared, changed or went. It runs through the runner like every other command
 * (in the namespace, dying with netpol). Ends when the monitor exits; a monitor that fails
 * (no such namespace) is an error.
 */
export function monitorLinks(
  runner: Runner,
  changed: () => void,
  signal: AbortSignal,
): Promise<void> {
  return runner.session("ip", ["-o", "monitor", "link"], { signal, onLine: changed });
}
