import type { ServerResponse } from "node:http";
import type { DashboardFeed, Snapshot } from "./feed.js";
import { REGIONS, type Region, regions } from "./page.js";
import type { Role } from "./session.js";

type Rendered = Record<Region, string>;

interface Client {
  readonly res: ServerResponse;
  readonly role: Role;
  sent: Partial<Rendered>;
}

/** A page that reads this much slower than it is written to is cut off; it reconnects. */
const MAX_BACKLOG = 1 << 20;

/**
 * The event stream of every open page (server-sent events). Each snapshot is drawn once per
 * role, whatever the number of pages, and each page gets only the regions that changed since
 * what it was last sent.
 */
export class RegionStreams {
  private readonly clients = new Set<Client>();
  private stop: (() => void) | undefined;

  constructor(private readonly feed: DashboardFeed) {}

  get size(): number {
    return this.clients.size;
  }

  /** Streams to `res` from now on, starting with every region of `first`. */
  open(res: ServerResponse, role: Role, headers: Record<string, string>, first: Snapshot): void {
    res.writeHead(200, {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // A proxy in front must not buffer the stream.
      "x-accel-buffering": "no",
    });
    // How long the browser waits before it reconnects a dropped stream.
    res.write("retry: 2000\n\n");
    const client: Client = { res, role, sent: {} };
    this.clients.add(client);
    res.on("close", () => {
      this.clients.delete(client);
      if (this.clients.size === 0) {
        this.stop?.();
        this.stop = undefined;
      }
    });
    this.send(client, render(first, role), first.at);
    this.stop ??= this.feed.subscribe((s) => this.push(s));
  }

  closeAll(): void {
    for (const c of this.clients) c.res.end();
  }

  private push(snapshot: Snapshot): void {
    const byRole = new Map<Role, Rendered>();
    for (const c of this.clients) {
      let rendered = byRole.get(c.role);
      if (!rendered) {
        rendered = render(snapshot, c.role);
        byRole.set(c.role, rendered);
      }
      this.send(c, rendered, snapshot.at);
    }
  }

  private send(c: Client, rendered: Rendered, at: number): void {
    if (c.res.writableLength > MAX_BACKLOG) {
      c.res.destroy();
      return;
    }
    const changed: Partial<Rendered> = {};
    for (const r of REGIONS) if (c.sent[r] !== rendered[r]) changed[r] = rendered[r];
    c.sent = rendered;
    const data = JSON.stringify({ at: new Date(at).toISOString(), regions: changed });
    c.res.write(`event: regions\ndata: ${data}\n\n`);
  }
}

function render(s: Snapshot, role: Role): Rendered {
  const parts = regions(s, { role, csrf: "" });
  const out = {} as Rendered;
  for (const r of REGIONS) out[r] = parts[r].text;
  return out;
}
