import type { Target } from "../apply/target.js";
import { collectStatus, type SiteStatus } from "../status/collect.js";

/**
 * One status read shared by everything that asks at about the same time (`/status`,
 * `/metrics`, the page): each read spawns a few processes, so a busy scraper or fifty open
 * pages must not each cause their own.
 */
export class StatusCache {
  private cached: { at: number; status: Promise<SiteStatus> } | undefined;

  constructor(
    private readonly target: Target,
    private readonly now: () => number = Date.now,
  ) {}

  /** A status read no longer than `maxAgeMs` ago (or being read now). */
  get(maxAgeMs: number): Promise<SiteStatus> {
    const now = this.now();
    if (!this.cached || now - this.cached.at > maxAgeMs) {
      const fresh = collectStatus(this.target, now);
      const entry = { at: now, status: fresh };
      this.cached = entry;
      fresh.catch(() => {
        if (this.cached === entry) this.cached = undefined;
      });
    }
    return this.cached.status;
  }

  /** After a change: the next read is a new one. */
  invalidate(): void {
    this.cached = undefined;
  }
}
