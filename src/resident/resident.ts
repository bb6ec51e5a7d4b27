import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { type ApplyOptions, type ApplyResult, applySite } from "../apply/apply.js";
import { planSite } from "../apply/site/plan-site.js";
import type { LiveReader } from "../apply/site/read-live.js";
import type { loadInForce } from "../apply/source/in-force.js";
import type { PolicyInput, PolicySource } from "../apply/source/input.js";
import { fromText, type PolicyText, type Validate } from "../apply/source/text.js";
import { withLock } from "../apply/state/lock.js";
import { loadPending } from "../apply/state/pending.js";
import { isRunning } from "../apply/state/process-identity.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";
import { changeLine, planJson } from "../plan/format.js";
import type { LiveState } from "../plan/types.js";
import type { IncrementalPolicy } from "../policy/incremental/policy.js";
import { collectStatus, type SiteStatus } from "../status/collect.js";
import { type NetlinkEvent, startMonitor } from "../system/iproute2/monitor.js";
import { type ForwardDrop, readForwardDrops } from "../system/nftables.js";
import type { Session } from "../system/session.js";
import { type SessionRunner, withSessions } from "../system/session-runner.js";
import type { WireguardControl } from "../system/wireguard-uapi.js";
import { EventBus } from "./events.js";
import { inForceMemo, recordStamp } from "./in-force-memo.js";
import { LiveModel } from "./live-model.js";
import type { PolicyFeed } from "./policy-feed.js";
import { deviceReturns, type PreparedChange } from "./reactions.js";
import { Turns } from "./turns.js";

/** Changes an "applied" event names; a first round at 10,000 objects says how many. */
const LOGGED_CHANGES = 20;

/**
 * The resident process: one long-lived reconciler per site. `netpol watch` and `netpol serve`
 * host it (serve with HTTP in front), the fleet agent the same object, each with its own front
 * door. It
 * holds four seams the others plug into (docs/resident.md):
 *
 * - a **policy feed** (policy-feed.ts): the policy the site is to hold, and word of a new one;
 * - a **live model** (live-model.ts) kept current from `ip monitor`, so a reconcile reads only
 *   what changed, through long-lived tool sessions (no process per read);
 * - an **event bus** (events.ts): what happened, for `watch --json`, the dashboard, metrics;
 * - **reactions** (reactions.ts): for an event it can foresee (a device coming back), the change
 *   computed ahead, written the moment the event comes; a reconcile confirms it afterwards.
 *
 * Every change goes through the same apply as the CLI's (lock, journal, verify, rollback): a
 * resident killed at any instant leaves what a killed apply leaves, and one apply converges.
 */
export interface ResidentOptions {
  readonly target: Target;
  readonly feed: PolicyFeed;
  /** Who its applies are by, in the record and the journal. */
  readonly by: string;
  /** A full reconcile (everything read again from the tools) this often, in ms; 0: never. */
  readonly intervalMs: number;
  /** WireGuard's control sockets; without them, `wg` processes. */
  readonly wireguard?: WireguardControl;
  /**
   * Called after each reconcile that ended done, before the next: what follows the policy in
   * force (failover's health supervisor) looks at it here.
   */
  readonly afterReconcile?: () => Promise<void>;
  readonly bus?: EventBus;
}

/** How a reconcile ended: done; refused because another apply holds the site; failed. */
type Round = "done" | "busy" | "failed";

const BUSY = new Set(["NETPOL_E_LOCKED", "NETPOL_E_CONFIRM_PENDING"]);
/** An apply that got as far as changing the site, then was rolled back (perhaps not whole). */
const CHANGED_THEN_FAILED = new Set([
  "NETPOL_E_APPLY_FAILED",
  "NETPOL_E_ROLLBACK_FAILED",
  "NETPOL_E_INTERRUPTED",
  "NETPOL_E_INTERNAL",
]);
/** A burst of events (a device and its addresses coming back) makes one reconcile. */
const SETTLE_MS = 100;
const BUSY_RETRY_MS = 250;
const FAILED_RETRIES_MS = [1_000, 2_000, 4_000];

export class Resident {
  readonly bus: EventBus;
  readonly model = new LiveModel();
  /** The target, reached through long-lived sessions. */
  readonly target: Target;
  private readonly runner: SessionRunner;
  private prepared: ReadonlyMap<string, PreparedChange> = new Map();
  /** Reactions made since the last reconcile, which the next one confirms; processes then. */
  private unconfirmed: { readonly trigger: string; readonly spawned: number }[] = [];
  /** One apply at a time in this process (reactions first); the lock keeps other processes out. */
  private readonly turns = new Turns();
  private dirty = false;
  private loop: Promise<void> | undefined;
  private settle: NodeJS.Timeout | undefined;
  private stopped = false;
  private monitor: Session | undefined;
  /**
   * Other tables' forward chains that drop, for status reports: they send no event, so they
   * are read again with everything else every interval (and on refresh), not at each report.
   */
  private drops: Promise<ForwardDrop[]> | undefined;
  /** The policy in force parsed, for status reports, while the record file is the same. */
  private readonly inForce: () => ReturnType<typeof loadInForce>;
  /**
   * The record file as this process last left or found it (recordStamp). Another that differs
   * means another process applied: the model's WireGuard and nftables are then read again, not
   * trusted (they send no events).
   */
  private recorded: string | undefined;

  constructor(private readonly opts: ResidentOptions) {
    this.bus = opts.bus ?? new EventBus();
    this.runner = withSessions(opts.target.runner, opts.wireguard);
    this.target = { ...opts.target, runner: this.runner };
    this.inForce = inForceMemo(opts.target.files);
  }

  /**
   * Runs until `signal` aborts: follows the kernel's events, applies `first` (or the feed's
   * policy), then reconciles on events, on word from the feed and every interval.
   */
  async run(signal: AbortSignal, first?: PolicyInput): Promise<void> {
    this.follow();
    while (!signal.aborted) {
      const round = await this.turns.run(() =>
        this.reconcile(first ? async () => first : () => this.opts.feed.current()),
      );
      if (round !== "busy") break;
      await sleep(BUSY_RETRY_MS);
    }
    this.bus.emit({
      event: "watching",
      ...(this.opts.target.runner.netns ? { netns: this.opts.target.runner.netns } : {}),
    });
    const every = this.opts.intervalMs;
    const timer =
      every > 0
        ? setInterval(() => {
            this.model.forget();
            this.drops = undefined;
            this.wake(0);
          }, every)
        : undefined;
    this.opts.feed.follow?.(() => this.wake(0), signal);
    await new Promise<void>((done) => {
      if (signal.aborted) done();
      signal.addEventListener("abort", () => done(), { once: true });
    });
    this.stopped = true;
    clearInterval(timer);
    clearTimeout(this.settle);
    this.monitor?.stop();
    await this.loop;
    await this.turns.idle();
    this.runner.close();
  }

  /**
   * Reads each policy text from the last one this resident read: only the entries that changed
   * (policy/incremental). Loaded with the first text, so a resident given none holds no parser.
   */
  private reader: Promise<IncrementalPolicy> | undefined;
  private readonly validate: Validate = async ({ text, name, site, keyDir }) => {
    this.reader ??= import("../policy/incremental/policy.js").then(
      (m) => new m.IncrementalPolicy(),
    );
    const reader = await this.reader;
    const loaded = reader.load(text, name);
    // After a read through the entries the reader compiles too (from the last state, where one
    // peer's key changed); after a full read, planSite compiles as ever.
    const desired = reader.compiled(site);
    return desired
      ? { hash: loaded.hash, text, site, keyDir, desired }
      : { ...loaded, site, keyDir };
  };

  /**
   * Applies a policy's text through the resident: read incrementally from the last text read;
   * the first one from the compiled cache when it is the text last applied (reading the cache
   * parses the whole state file, which a reader holding a text no longer needs).
   */
  applyText(policy: PolicyText, by: string, options: ApplyOptions = {}): Promise<ApplyResult> {
    const source = this.reader
      ? () => this.validate(policy)
      : () => fromText(this.target.files, policy, this.validate);
    return this.apply(source, by, options);
  }

  /** Applies a policy through the resident (serve's POST /apply, the agent's new policy). */
  apply(source: PolicySource, by: string, options: ApplyOptions = {}): Promise<ApplyResult> {
    this.model.socketsChanged();
    return this.turns.run(async () => {
      const result = await this.applied(
        applySite(this.target, source, by, {
          ...options,
          read: this.read,
          inForce: this.lastApplied,
        }),
      );
      this.took(result, by);
      return result;
    });
  }

  /**
   * How the resident's plans read the site: the live model, all of it read again if another
   * process applied since (asked under the apply's lock, so none can apply meanwhile).
   */
  private readonly read: LiveReader = async (runner, protocol, want) => {
    const stamp = await recordStamp(this.opts.target.files);
    if (stamp !== this.recorded) this.model.forget();
    this.recorded = stamp;
    return this.model.read(runner, protocol, want);
  };

  /** The state the site was last found or made to hold (asked after the plan's read). */
  private readonly lastApplied = () => this.model.applied;

  /**
   * An apply's outcome, and what it leaves the model: after a change, the record's new stamp;
   * after a failure (rolled back, perhaps not whole) nothing held is trusted.
   */
  private async applied(apply: Promise<ApplyResult>): Promise<ApplyResult> {
    try {
      const result = await apply;
      if (result.changed) this.recorded = await recordStamp(this.opts.target.files);
      return result;
    } catch (err) {
      if (!(err instanceof NetpolError) || CHANGED_THEN_FAILED.has(err.code)) this.model.forget();
      throw err;
    }
  }

  /**
   * The site's status from the live model: ip as the kernel's events left it, WireGuard asked
   * over its control sockets, nftables' counters read again; nothing kept (status.ts).
   */
  status(now: number): Promise<SiteStatus> {
    return collectStatus(this.target, now, {
      read: this.model.peek,
      inForce: this.inForce,
      forwardDrops: (runner) => {
        this.drops ??= readForwardDrops(runner).catch((err: unknown) => {
          this.drops = undefined;
          throw err;
        });
        return this.drops;
      },
    });
  }

  /**
   * The site was changed by a way the live model hears nothing of (a revert, a confirm through
   * the front door): everything is read again, and a reconcile follows at once.
   */
  refresh(): void {
    this.model.forget();
    this.drops = undefined;
    this.wake(0);
  }

  /** Carries out a change computed ahead, under the apply's lock; then a reconcile confirms it. */
  async carryOut(change: PreparedChange, since = performance.now()): Promise<boolean> {
    const { ip4, ip6, trigger } = change;
    const spawned = this.runner.spawned;
    const step = "reaction";
    const write = async () => {
      if (ip4.length > 0)
        await this.runner.run("ip", ["-batch", "-"], { input: `${ip4.join("\n")}\n`, step });
      if (ip6.length > 0)
        await this.runner.run("ip", ["-6", "-batch", "-"], { input: `${ip6.join("\n")}\n`, step });
    };
    try {
      // Ahead of any reconcile of this process (one under way gives way before it changes
      // anything), and under the apply's lock against other processes'.
      await this.turns.run(
        () => withLock(this.target, write, { command: `reaction (${this.opts.by})` }),
        true,
      );
    } catch (err) {
      // Busy (an apply runs): that apply, or the reconcile after it, does it instead.
      if (!(err instanceof NetpolError && err.code === "NETPOL_E_LOCKED")) this.failed(err);
      this.wake();
      return false;
    }
    const ms = Math.round((performance.now() - since) * 10) / 10;
    this.bus.emit({ event: "reaction", trigger, changes: ip4.length + ip6.length, ms });
    this.unconfirmed.push({ trigger, spawned });
    this.wake();
    return true;
  }

  /** `ip monitor`, started again should it stop while the resident runs. */
  private follow(): void {
    if (this.stopped) return;
    const session = startMonitor(this.runner, (e) => this.observe(e, performance.now()));
    this.monitor = session;
    void session.exited.then(async () => {
      if (this.stopped) return;
      this.failed(new NetpolError("NETPOL_E_TOOL_FAILED", "ip monitor stopped; starting it again"));
      this.model.forget();
      await sleep(FAILED_RETRIES_MS[0]);
      this.follow();
      this.wake(0);
    });
  }

  private observe(event: NetlinkEvent, at: number): void {
    const { cameUp } = this.model.observe(event);
    // ip keeps each device's index by name for as long as it runs: a device that went (and may
    // come back under the same name, as OpenVPN's tun does) needs ip processes that never knew it.
    if (event.kind === "link" && event.gone) this.runner.forgetDevices();
    if (event.kind === "link") {
      this.bus.emit({ event: "link", name: event.name, up: event.up, gone: event.gone });
    }
    const change = cameUp !== undefined ? this.prepared.get(cameUp) : undefined;
    if (change) void this.carryOut(change, at);
    else this.wake();
  }

  /** A reconcile soon: after `delay` ms without another event. */
  private wake(delay = SETTLE_MS): void {
    if (this.stopped) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => {
      this.dirty = true;
      this.loop ??= this.drain();
    }, delay);
  }

  private async drain(): Promise<void> {
    let failures = 0;
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      const round = await this.turns.run(() => this.reconcile(() => this.opts.feed.current()));
      if (round === "busy") {
        this.dirty = true;
        await sleep(BUSY_RETRY_MS);
      } else if (round === "failed" && failures < FAILED_RETRIES_MS.length) {
        this.dirty = true;
        await sleep(FAILED_RETRIES_MS[failures++]);
      } else if (round === "done") failures = 0;
    }
    this.loop = undefined;
  }

  private async reconcile(source: () => Promise<PolicyInput>): Promise<Round> {
    const round = await this.reconcileOnce(source);
    if (round === "done") await this.opts.afterReconcile?.().catch((err) => this.failed(err));
    return round;
  }

  private async reconcileOnce(source: () => Promise<PolicyInput>): Promise<Round> {
    const confirming = this.unconfirmed;
    this.unconfirmed = [];
    const confirmed = () => {
      for (const { trigger, spawned } of confirming) {
        const processes = this.runner.spawned - spawned;
        this.bus.emit({ event: "confirmed", after: trigger, processes });
      }
    };
    try {
      // Most reconciles find nothing to do: they look without the apply's lock, so an
      // operator's `netpol apply` meanwhile is not refused; only a change takes it.
      if (await this.inOrder(source)) {
        confirmed();
        return "done";
      }
      const result = await this.applied(
        applySite(this.target, source, this.opts.by, {
          read: this.read,
          inForce: this.lastApplied,
          proceed: () => !this.turns.urgentWaiting,
        }),
      );
      this.took(result);
      confirmed();
      return "done";
    } catch (err) {
      this.unconfirmed.push(...confirming);
      if (err instanceof NetpolError && BUSY.has(err.code)) return "busy";
      // Nothing applied here yet (serve on a new site): nothing to hold until an apply.
      if (err instanceof NetpolError && err.code === "NETPOL_E_NO_POLICY") return "done";
      this.failed(err);
      return "failed";
    }
  }

  /**
   * Whether the site holds `source`'s policy as the last apply recorded it, with nothing to
   * change and nothing left to settle (an interrupted apply, an unconfirmed one whose timer
   * is gone): then there is nothing to apply.
   */
  private async inOrder(source: () => Promise<PolicyInput>): Promise<boolean> {
    const pending = await loadPending(this.target.files);
    if (pending && !(pending.timer && isRunning(pending.timer))) return false;
    const planned = await planSite(this.target, source, false, this.read);
    const policy = await source();
    const { plan, record, interrupted, desired } = planned;
    const recorded =
      record?.policyHash === policy.hash &&
      record.site === policy.site &&
      record.protocol === desired.protocol;
    if (!recorded || interrupted || plan.changes.length > 0 || plan.conflicts.length > 0)
      return false;
    this.prepared = deviceReturns(desired);
    this.model.applied = desired;
    return true;
  }

  /** What an apply leaves the resident: the live state it verified, the reactions of its policy. */
  private took(result: ApplyResult, by = this.opts.by): void {
    this.model.settle(withLoaded(result));
    this.model.applied = result.desired;
    this.prepared = deviceReturns(result.desired);
    for (const note of result.notes) this.bus.emit({ event: "note", note });
    if (result.changed)
      this.bus.emit({
        event: "applied",
        changes: result.plan.changes.length,
        by,
        what: planJson(result.plan).changes.slice(0, LOGGED_CHANGES).map(changeLine),
      });
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof NetpolError ? err.code : "NETPOL_E_INTERNAL";
    this.bus.emit({ event: "error", code, message });
  }
}

/**
 * The live state an apply left, with netpol's table as a rollback can load it back: the text the
 * apply loaded, which `nft -f` took whole in one transaction. The next change's snapshot then
 * needs no listing of the table read from the kernel first (one `nft` process, and at 10,000
 * elements its parse).
 */
function withLoaded(result: ApplyResult): LiveState {
  const { live, plan } = result;
  const load = plan.changes.find((c) => c.kind === "nft" && c.op === "replace");
  if (load?.kind !== "nft" || !live.nft) return live;
  return { ...live, nft: { ...live.nft, listing: load.text } };
}
