import { createInterface } from "node:readline";
import { execa } from "execa";

export type WatchEvent = Record<string, unknown> & { readonly event: string; readonly at: number };

/**
 * `netpol watch --json` as a child, its events collected as they come, each with the time it
 * arrived (ms): tests wait for an event and measure between them.
 */
export function startWatch(args: readonly string[]) {
  const child = execa(process.execPath, ["bin/netpol.js", "watch", ...args, "--json"], {
    reject: false,
  });
  const events: WatchEvent[] = [];
  const waiters = new Set<() => void>();
  if (child.stdout) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        events.push({ ...(JSON.parse(line) as { event: string }), at: Date.now() });
      } catch {
        return;
      }
      for (const w of waiters) w();
    });
  }
  return {
    events,
    /** The first event from index `from` on that `match` accepts; rejects after `timeoutMs`. */
    waitFor(match: (e: WatchEvent) => boolean, timeoutMs = 20_000, from = 0): Promise<WatchEvent> {
      return new Promise((resolve, reject) => {
        const look = () => {
          const found = events.slice(from).find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(look);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(
            new Error(
              `no such watch event within ${timeoutMs} ms; saw ${JSON.stringify(events.slice(from))}`,
            ),
          );
        }, timeoutMs);
        waiters.add(look);
        look();
      });
    },
    async stop() {
      child.kill("SIGTERM");
      await child;
    },
  };
}
