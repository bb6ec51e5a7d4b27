import { execa } from "execa";

/**
 * Re-applies when links change. A route through a device dies with the device, so when an
 * external tunnel (OpenVPN's tun, say) comes back, its egress route must be put back; the
 * fail-closed route holds the line meanwhile. Apply is idempotent, so reacting to every
 * link event is safe; events are coalesced.
 */
export function watchLinks(
  netns: string | undefined,
  onChange: () => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const argv = [...(netns ? ["-n", netns] : []), "-o", "monitor", "link"];
  const monitor = execa("ip", argv, {
    cancelSignal: signal,
    reject: false,
    buffer: false,
    stdin: "ignore",
  });
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  monitor.stdout?.on("data", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(onChange, onChange);
    }, 200);
  });
  signal.addEventListener("abort", () => clearTimeout(timer));
  return monitor.then(() => running);
}
