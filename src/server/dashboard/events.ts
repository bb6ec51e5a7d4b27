import { type Health, type Item, itemsById, type SiteView } from "./view.js";

export type Level = "info" | "warn" | "bad";

/** Something that happened: an apply, a revert, a tunnel that went down or came back. */
export interface SiteEvent {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly site: string | null;
  readonly level: Level;
  readonly text: string;
}

export type EventInput = Omit<SiteEvent, "at">;

const CAPACITY = 200;

/**
 * The recent events, in memory: what the page lists and streams. Fed by what this server does
 * (applies, confirms, reverts) and by the changes of state its samples show.
 */
export class EventLog {
  private readonly events: SiteEvent[] = [];
  private readonly listeners = new Set<(e: SiteEvent) => void>();

  constructor(private readonly now: () => number = Date.now) {}

  record(input: EventInput): void {
    const event = { at: this.now(), ...input };
    this.events.push(event);
    if (this.events.length > CAPACITY) this.events.shift();
    for (const listener of this.listeners) listener(event);
  }

  /** The newest first. */
  recent(limit: number): readonly SiteEvent[] {
    return this.events.slice(-limit).reverse();
  }

  onRecord(listener: (e: SiteEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const LEVEL: Record<Health, Level> = { ok: "info", unknown: "warn", warn: "warn", bad: "bad" };

const said = (site: string, i: Item) => `${site}: ${i.kind} ${i.name} ${i.state}`;

/**
 * What changed between two samples, as events: a site whose own state changed (drift, a
 * pending apply, reachable), a tunnel, peer, egress or service whose health changed, appeared
 * unwell, or went away.
 */
export function transitions(before: readonly SiteView[], after: readonly SiteView[]): EventInput[] {
  const out: EventInput[] = [];
  const sitesBefore = new Map(before.map((s) => [s.id, s]));
  for (const s of after) {
    const was = sitesBefore.get(s.id);
    if (was && was.state !== s.state)
      out.push({ site: s.name, level: LEVEL[s.own], text: `${s.name}: ${s.state}` });
  }
  const siteOf = (id: string) => id.split("/")[0] ?? "";
  const old = itemsById(before);
  const now = itemsById(after);
  for (const [id, i] of now) {
    const was = old.get(id);
    if (was ? was.health !== i.health : i.health !== "ok" && sitesBefore.has(siteOf(id)))
      out.push({ site: siteOf(id), level: LEVEL[i.health], text: said(siteOf(id), i) });
  }
  for (const [id, i] of old) {
    // A site that stops answering keeps what it said last; one that left the policy says nothing.
    if (!now.has(id) && after.some((s) => s.id === siteOf(id)))
      out.push({ site: siteOf(id), level: "bad", text: `${siteOf(id)}: ${i.kind} ${i.name} gone` });
  }
  return out;
}
