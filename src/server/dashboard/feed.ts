import type { SiteStatus } from "../../status/collect.js";
import { type EventLog, type SiteEvent, transitions } from "./events.js";
import { readingsOf, type Series, type SeriesStore } from "./series.js";
import { type SiteSample, type SiteView, sitesView } from "./view.js";

/** Another site, and how to ask it for its status (its `netpol serve`, through `control`). */
export interface RemoteSource {
  readonly site: string;
  readonly status: () => Promise<SiteStatus>;
}

/**
 * Where the page's data comes from. Today: the status this server reads (shared with
 * `GET /status`), the other sites' servers, and `ip monitor link` for a prompt look when a
 * device changes. A resident process with a live model and an event bus plugs in here.
 */
export interface FeedSources {
  /** This site's name while it has no policy to say it. */
  readonly site: string;
  /** This site's status; `fresh`: read now, not the one in hand. */
  readonly local: (fresh: boolean) => Promise<SiteStatus>;
  /** Asked again each round: the policy in force may have changed. */
  readonly others: () => Promise<readonly RemoteSource[]>;
  /** Calls `onChange` whenever a link changes, until `signal` aborts. */
  readonly linkChanges?: (onChange: () => void, signal: AbortSignal) => void;
}

export interface Snapshot {
  readonly at: number;
  readonly sites: readonly SiteView[];
  readonly events: readonly SiteEvent[];
  readonly series: readonly Series[];
}

export interface FeedTiming {
  /** Between two looks while someone watches the page. */
  readonly activeMs: number;
  /** Between two looks while nobody does: the plots and events keep their history. */
  readonly idleMs: number;
  readonly now: () => number;
}

const DEFAULT_TIMING: FeedTiming = { activeMs: 1000, idleMs: 10_000, now: Date.now };
/** Events the page lists. */
const RECENT = 20;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Looks at the site (and the others) on a schedule, keeps the plots and events, and tells each
 * open page what changed. One look serves every page: 50 open pages cost what one does.
 */
export class DashboardFeed {
  private local: SiteSample;
  private readonly others = new Map<string, SiteSample>();
  private order: readonly string[] = [];
  private sites: readonly SiteView[] | undefined;
  private snapshot: Snapshot | undefined;
  private readonly listeners = new Set<(s: Snapshot) => void>();
  private timer: NodeJS.Timeout | undefined;
  private links: AbortController | undefined;
  private looking: Promise<void> | undefined;
  private lookAgain: Promise<void> | undefined;
  private asking: Promise<void> | undefined;
  private publishing = false;
  private closed = false;
  private started = false;
  private readonly unsubscribeEvents: () => void;

  constructor(
    private readonly sources: FeedSources,
    private readonly events: EventLog,
    private readonly series: SeriesStore,
    private readonly timing: FeedTiming = DEFAULT_TIMING,
  ) {
    this.local = { site: sources.site, error: "not looked at yet" };
    // An apply or a revert shows on open pages at once, not at the next look.
    this.unsubscribeEvents = events.onRecord(() => {
      if (!this.publishing && this.sites) this.publish();
    });
  }

  /**
   * A snapshot no older than one look while watched: the one a look under way (after a change,
   * say) brings, or a new look's if the last is older.
   */
  async current(): Promise<Snapshot> {
    this.schedule();
    const stale = !this.snapshot || this.timing.now() - this.snapshot.at > this.timing.activeMs;
    if (this.lookAgain ?? this.looking) await (this.lookAgain ?? this.looking);
    else if (stale) await this.look(false);
    return this.snapshot ?? this.publish();
  }

  /** Calls `listener` with each new snapshot until the returned function is called. */
  subscribe(listener: (s: Snapshot) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) {
      this.watchLinks();
      this.schedule(0);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && !this.started) {
        this.links?.abort();
        this.links = undefined;
      }
    };
  }

  /** Looks again now: after this server changed something. */
  async refresh(): Promise<void> {
    await this.look(true);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.links?.abort();
    this.unsubscribeEvents();
    this.listeners.clear();
  }

  private watchLinks(): void {
    if (!this.sources.linkChanges || this.links) return;
    this.links = new AbortController();
    this.sources.linkChanges(() => void this.look(true), this.links.signal);
  }

  /** The next look, at the pace of whether anyone watches; the first one may come sooner. */
  private schedule(delay?: number): void {
    if (this.closed || (this.timer && delay === undefined)) return;
    clearTimeout(this.timer);
    const pace = this.listeners.size > 0 ? this.timing.activeMs : this.timing.idleMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.look(false).finally(() => this.schedule());
    }, delay ?? pace);
    this.timer.unref();
  }

  /**
   * Starts looking now, not at the first page view, and at each link change: events and plots
   * from the start.
   */
  start(): void {
    this.started = true;
    this.watchLinks();
    this.schedule(0);
  }

  /** One look here (`fresh`: a new read, not the status in hand), and a question to the others. */
  private look(fresh: boolean): Promise<void> {
    void this.askOthers();
    if (this.looking) {
      // A look under way may have read the state before the change that asks for a fresh one.
      if (!fresh) return this.looking;
      this.lookAgain ??= this.looking.then(() => {
        this.lookAgain = undefined;
        return this.look(true);
      });
      return this.lookAgain;
    }
    this.looking = (async () => {
      try {
        const status = await this.sources.local(fresh);
        const site = status.site ?? this.sources.site;
        this.local = { site, status };
        this.series.record(this.timing.now(), readingsOf(site, status));
      } catch (err) {
        this.local = { ...this.local, error: message(err) };
      } finally {
        this.looking = undefined;
      }
      this.publish();
    })();
    return this.looking;
  }

  /** The other sites answer in their own time: a dead tunnel must not hold this site's news. */
  private askOthers(): Promise<void> {
    this.asking ??= (async () => {
      try {
        const remotes = await this.sources.others();
        this.order = remotes.map((r) => r.site);
        await Promise.all(
          remotes.map(async (r) => {
            const before = this.others.get(r.site);
            try {
              const status = await r.status();
              this.others.set(r.site, { site: r.site, status });
              this.series.record(this.timing.now(), readingsOf(r.site, status));
            } catch (err) {
              this.others.set(r.site, { ...before, site: r.site, error: message(err) });
            }
          }),
        );
      } catch {
        // No policy in force to name them: no other sites to show.
        this.order = [];
      } finally {
        this.asking = undefined;
      }
      if (this.sites) this.publish();
    })();
    return this.asking;
  }

  private publish(): Snapshot {
    this.publishing = true;
    try {
      const others = this.order.flatMap((site) => {
        const s = this.others.get(site);
        return s ? [s] : [];
      });
      const sites = sitesView(this.local, others);
      if (this.sites) for (const e of transitions(this.sites, sites)) this.events.record(e);
      this.sites = sites;
      const snapshot: Snapshot = {
        at: this.timing.now(),
        sites,
        events: this.events.recent(RECENT),
        series: this.series.all(),
      };
      this.snapshot = snapshot;
      for (const listener of this.listeners) listener(snapshot);
      return snapshot;
    } finally {
      this.publishing = false;
    }
  }
}
