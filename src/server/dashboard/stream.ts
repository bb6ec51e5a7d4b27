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
  private closed = false;

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
      // The connection ends with the stream: kept alive once a closing server ended it, it
      // would hold the server's close (which waits for every connection) for 72 s.
      connection: "close",
    });
    // How long the browser waits before it reconnects a dropped stream.
    res.write("retry: 2000\n\n");
    // Its first snapshot came after the server began to close: a stream left open would hold
    // the close (it waits for every request) for as long as the page stays; it reconnects.
    if (this.closed) {
      res.end();
      return;
    }
    const client: Client = { res, role, sent: {} };
    this.clients.add(client);
    res.on("close", () => {
      this.clients.delete(client);
      if (this.clients.size === 0) {
        this.stop?.();
        this.stop = undefined;
      }
    });
    const rendered = render(first, role);
    this.send(client, rendered, message({}, rendered, first.at));
    this.stop ??= this.feed.subscribe((s) => this.push(s));
  }

  /** Ends every stream, and from now on each one opened at once: the server is closing. */
  closeAll(): void {
    this.closed = true;
    for (const c of this.clients) c.res.end();
  }

  private push(snapshot: Snapshot): void {
    const byRole = new Map<Role, Rendered>();
    // Pages sent the same regions last time get the same message: it is written once.
    const messages = new Map<Partial<Rendered>, string>();
    for (const c of this.clients) {
      let rendered = byRole.get(c.role);
      if (!rendered) {
        rendered = render(snapshot, c.role);
        byRole.set(c.role, rendered);
      }
      const text = messages.get(c.sent) ?? message(c.sent, rendered, snapshot.at);
      messages.set(c.sent, text);
      this.send(c, rendered, text);
    }
  }

  private send(c: Client, rendered: Rendered, text: string): void {
    if (c.res.writableLength > MAX_BACKLOG) {
      c.res.destroy();
      return;
    }
    c.sent = rendered;
    c.res.write(text);
  }
}

/** The regions that differ from what a page was sent, as one server-sent event. */
function message(sent: Partial<Rendered>, rendered: Rendered, at: number): string {
  const changed: Partial<Rendered> = {};
  for (const r of REGIONS) if (sent[r] !== rendered[r]) changed[r] = rendered[r];
  const data = JSON.stringify({ at: new Date(at).toISOString(), regions: changed });
  return `event: regions\ndata: ${data}\n\n`;
}

function render(s: Snapshot, role: Role): Rendered {
  const parts = regions(s, { role, csrf: "" });
  const out = {} as Rendered;
  for (const r of REGIONS) out[r] = parts[r].text;
  return out;
}
