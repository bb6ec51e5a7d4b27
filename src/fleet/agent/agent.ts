import { setTimeout as sleep } from "node:timers/promises";
import type { ApplyResult } from "../../apply/apply.js";
import { fromInForce } from "../../apply/source/from-in-force.js";
import type { PolicyInput } from "../../apply/source/input.js";
import { fromText } from "../../apply/source/text.js";
import { type ApplyRecord, loadRecord } from "../../apply/state/record.js";
import type { Target } from "../../apply/target.js";
import type { HealthEvent } from "../../health/monitor.js";
import type { EventBus, Stamped } from "../../resident/events.js";
import type { Resident } from "../../resident/resident.js";
import type { WireguardControl } from "../../system/wireguard-uapi.js";
import { type Desired, desiredSchema, type Ledger, type Result, readValue } from "../documents.js";
import type { Etcd } from "../etcd/client.js";
import { type Follower, ownWatches } from "../etcd/follow.js";
import { desiredKey } from "../keys.js";
import { ContactWriter } from "./contact.js";
import { waitForGate } from "./gate-wait.js";
import { type PeerProbe, peerAddresses, pingPeers } from "./health.js";
import { type LocalState, loadLocal, saveLocal } from "./local.js";
import { checkedPart } from "./part.js";
import { Reporter } from "./reporter.js";
import { tunnelCount } from "./tunnels.js";

/** What the agent tells its operator, one event at a time (`--json`: one object per line). */
export type AgentEvent =
  | { readonly event: "connected"; readonly endpoint: string }
  | { readonly event: "etcd-lost"; readonly reason: string }
  | { readonly event: "compacted"; readonly revision: number }
  | {
      readonly event: "waiting";
      readonly serial: number;
      readonly wave: number;
      readonly for: readonly string[];
    }
  | { readonly event: "held"; readonly serial: number; readonly failed: readonly string[] }
  | {
      readonly event: "applied" | "unchanged" | "failed";
      readonly serial: number;
      readonly changes: number;
      readonly error?: string;
    }
  | { readonly event: "reverted"; readonly serial: number; readonly reason: string }
  | { readonly event: "drift"; readonly changes: number }
  /** The site's resident answered a device coming back with its routes (as `watch` does). */
  | {
      readonly event: "reaction";
      readonly trigger: string;
      readonly changes: number;
      readonly ms: number;
    }
  /** The health monitor of the policy in force (a chain's paths): as `watch` reports it. */
  | { readonly event: "health"; readonly health: HealthEvent }
  | { readonly event: "error"; readonly message: string };

export interface AgentOptions {
  readonly site: string;
  readonly target: Target;
  readonly etcd: Etcd;
  readonly keyDir: string;
  readonly appliedBy: string;
  /** Seconds the live report outlives a silent agent. */
  readonly reportTtl: number;
  /** Read the whole site again and put the policy in force back this often, in seconds; 0: never. */
  readonly interval: number;
  readonly signal: AbortSignal;
  readonly event: (e: AgentEvent) => void;
  readonly probe?: PeerProbe;
  /** WireGuard's control sockets, for the resident (watch's); without them, `wg` processes. */
  readonly wireguard?: WireguardControl;
  /** The resident's event bus, for a front door that listens before the resident runs. */
  readonly bus?: EventBus;
  /**
   * How the agent follows its keys: a watch stream of its own (the default), or a share of one
   * stream (etcd/watch-hub) when many agents run in one process, as bench/fleet.ts's do.
   */
  readonly watches?: Follower;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The site's agent: follows the site's desired key in etcd and applies each new revision once,
 * when its wave may start; reports what it did (ledger) and how the site is (live report, under
 * a lease). It hosts the site's resident process (src/resident), the one `netpol watch` hosts:
 * every revision is applied through it, and between revisions it holds the policy in force,
 * answering a device that comes back with its routes and reconciling on link changes and every
 * `interval`. Without etcd the site keeps what it has: nothing is reverted because the control
 * plane is gone.
 */
export class Agent {
  readonly #o: AgentOptions;
  readonly #files;
  readonly #reporter: Reporter;
  /** When etcd last answered, for the site's own status (stale past the report's TTL). */
  readonly #contact: ContactWriter;
  readonly #watches: Follower;
  #local: LocalState | undefined;
  /** The newest desired value seen, and a way to stop whatever waits on an older one. */
  #latest: Desired | undefined;
  #superseded = new AbortController();
  #wake: (() => void) | undefined;
  /** One apply of a revision at a time (the resident serialises it with its own rounds). */
  #applying: Promise<unknown> = Promise.resolve();
  #watch: { kick: () => void } | undefined;
  /**
   * The resident, once the site holds a policy (one applied before this start, or this agent's
   * first revision): until then there is nothing to hold.
   */
  #resident: Resident | undefined;
  #residentRun: Promise<void> | undefined;
  /** Changes the resident's own rounds made since its last reconcile ended (drift). */
  #drifted = 0;
  /** Set while a revision is applied through the resident: its changes are not drift. */
  #revision = false;
  /** Revisions applied by this process: the bench checks none is applied twice. */
  readonly applies = new Map<number, number>();

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#files = options.target.files;
    this.#watches = options.watches ?? ownWatches(options.etcd);
    this.#contact = new ContactWriter(options.target, options.etcd.endpoints, options.reportTtl);
    this.#reporter = new Reporter(
      options.etcd,
      options.site,
      options.reportTtl,
      {
        lost: (reason) => {
          options.event({ event: "etcd-lost", reason });
          // The watch may hang on a member that went away without closing it: start another.
          this.#watch?.kick();
        },
        contact: () => void this.#contact.contact(),
      },
      { serial: 0, state: "starting", drift: 0, tunnels: { up: 0, of: 0 } },
    );
  }

  async run(): Promise<void> {
    const { signal } = this.#o;
    this.#local = await loadLocal(this.#files);
    await this.#contact
      .start()
      .catch((err: unknown) => this.#o.event({ event: "error", message: messageOf(err) }));
    // At boot the kernel lost what the last revision put there: the resident's first round puts
    // it back, from the record, whether or not etcd answers.
    await this.#hold().catch((err: unknown) =>
      this.#o.event({ event: "error", message: messageOf(err) }),
    );
    const keeping = this.#reporter.keepAlive(signal);
    const worker = this.#work();
    await this.#follow();
    this.#wake?.();
    await Promise.all([keeping, worker, this.#residentRun]);
  }

  /** The site's resident, once it holds a policy (`agent --listen` serves from it). */
  get resident(): Resident | undefined {
    return this.#resident;
  }

  /** SIGHUP: the policy in force is read again and the kernel reconciled with it at once. */
  reload(): void {
    this.#resident?.refresh();
  }

  /** Starts the resident on the policy in force here, if there is one and it is not running. */
  async #hold(): Promise<void> {
    const { target, keyDir, appliedBy, interval, signal, wireguard, bus } = this.#o;
    if (this.#resident || signal.aborted) return;
    const inForce = await fromInForce(this.#files, keyDir);
    if (!inForce) return;
    // The resident, and the health supervisor of the policy in force, as watch and serve follow
    // it, load with the first policy there is to hold: an agent waiting for its first revision
    // holds neither, nor the apply path and policy parser they bring (bench/agent-memory.ts).
    const { Resident } = await import("../../resident/resident.js");
    const { inForceFeed } = await import("../../resident/policy-feed.js");
    const { followHealth } = await import("../../resident/health.js");
    const health = followHealth(target, (e) => this.#o.event({ event: "health", health: e }));
    const resident = new Resident({
      target,
      feed: inForceFeed(target, inForce.policy),
      by: `${appliedBy} (drift)`,
      intervalMs: interval * 1000,
      ...(wireguard ? { wireguard } : {}),
      ...(bus ? { bus } : {}),
      afterReconcile: async () => {
        await health.afterReconcile();
        await this.#reconciled();
      },
    });
    resident.bus.on((e) => this.#heard(e));
    this.#resident = resident;
    this.#residentRun = resident.run(signal).finally(() => health.stop());
  }

  /** What the resident says, as the agent's events: its reactions, its changes (drift), errors. */
  #heard(e: Stamped): void {
    const { event } = this.#o;
    if (e.event === "reaction")
      event({ event: "reaction", trigger: e.trigger, changes: e.changes, ms: e.ms });
    else if (e.event === "applied" && !this.#revision) {
      this.#drifted += e.changes;
      event({ event: "drift", changes: e.changes });
    } else if (e.event === "error") event({ event: "error", message: e.message });
  }

  /** After each of the resident's reconciles: the live report's drift, when it changed. */
  async #reconciled(): Promise<void> {
    const changes = this.#drifted;
    this.#drifted = 0;
    if (changes !== this.#reporter.live.drift || changes > 0)
      await this.#reporter
        .update({ drift: changes, tunnels: await this.#tunnels() })
        .catch(() => undefined);
  }

  /** Applies a policy through the resident when it runs (serialised with its rounds), else alone. */
  async #applyPolicy(input: PolicyInput, by: string): Promise<ApplyResult> {
    const resident = this.#resident;
    if (!resident) {
      const { applySite } = await import("../../apply/apply.js");
      return applySite(this.#o.target, input, by);
    }
    this.#revision = true;
    try {
      return await resident.apply(input, by);
    } finally {
      this.#revision = false;
    }
  }

  /** Reads the desired key, then follows it; reads it again after a compaction or an outage. */
  async #follow(): Promise<void> {
    const { etcd, site, signal, event } = this.#o;
    for (let failures = 0; !signal.aborted; ) {
      // Following begins before the read, which says the revision it goes on from.
      const attempt = new AbortController();
      const w = this.#watches.follow(
        { key: desiredKey(site) },
        (events) => {
          for (const e of events)
            if (e.type === "put") this.#offer(readValue(desiredSchema, e.kv.value));
        },
        AbortSignal.any([signal, attempt.signal]),
      );
      try {
        const { kv, revision } = await etcd.get(desiredKey(site));
        failures = 0;
        event({ event: "connected", endpoint: etcd.endpoints.join(",") });
        this.#offer(readValue(desiredSchema, kv?.value));
        w.from(revision + 1);
        this.#watch = w;
        const end = await w.done;
        if (end.kind === "compacted") event({ event: "compacted", revision: end.compactRevision });
      } catch (err) {
        event({ event: "etcd-lost", reason: messageOf(err) });
        await sleep(Math.min(10_000, 500 * 2 ** failures++), undefined, { signal }).catch(
          () => undefined,
        );
      } finally {
        attempt.abort();
      }
    }
  }

  #offer(desired: Desired | undefined): void {
    if (!desired || (this.#latest && desired.serial <= this.#latest.serial)) return;
    this.#latest = desired;
    this.#superseded.abort();
    this.#superseded = new AbortController();
    this.#wake?.();
  }

  /** Takes each newest desired value in turn; one that a newer one overtakes is dropped. */
  async #work(): Promise<void> {
    const { signal, event } = this.#o;
    let done: Desired | undefined;
    while (!signal.aborted) {
      const desired = this.#latest;
      if (!desired || desired === done) {
        await new Promise<void>((wake) => {
          this.#wake = wake;
        });
        continue;
      }
      done = desired;
      try {
        await this.#take(desired, AbortSignal.any([signal, this.#superseded.signal]));
      } catch (err) {
        event({ event: "error", message: messageOf(err) });
        // Unsettled (etcd out of reach while reporting): taken again, not applied again.
        done = undefined;
        await sleep(1_000, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  async #take(desired: Desired, superseded: AbortSignal): Promise<void> {
    const { event } = this.#o;
    const local = this.#local;
    if (local && local.serial >= desired.serial && local.phase === "done") {
      // Already taken up (before a restart, say): report it, never apply it again.
      await this.#report(local);
      return;
    }
    const opened = await waitForGate(this.#o.etcd, this.#watches, desired, superseded, (sites) => {
      event({ event: "waiting", serial: desired.serial, wave: desired.wave, for: sites });
      // Not awaited, so not thrown: etcd out of reach is the keepalive's to tell (etcd-lost),
      // and its next write carries this state.
      this.#reporter
        .update({
          state: "waiting",
          message: `revision ${desired.serial}: wave ${desired.wave} waits for ${sites.join(", ")}`,
        })
        .catch(() => undefined);
    });
    if (!opened) return;
    if (opened.kind === "halted") {
      event({ event: "held", serial: desired.serial, failed: opened.failed });
      await this.#reporter.update({
        state: "held",
        message: `revision ${desired.serial} stopped before wave ${desired.wave}: ${opened.failed.join(", ") || "earlier waves"} failed`,
      });
      return;
    }
    const outcome = await this.#exclusive(() => this.#apply(desired, local));
    const settled: LocalState = {
      version: 1,
      serial: desired.serial,
      phase: "done",
      result: outcome.result,
      hash: desired.hash,
      failuresBefore: opened.failuresBefore,
      ...(outcome.error ? { error: outcome.error } : {}),
      at: new Date().toISOString(),
      endpoints: [...this.#o.etcd.endpoints],
    };
    this.#local = settled;
    await saveLocal(this.#files, settled);
    event({
      event: outcome.result,
      serial: desired.serial,
      changes: outcome.changes,
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    await this.#report(settled);
  }

  /** The ledger of what the site took up, and its live report, until etcd takes them. */
  async #report(local: LocalState): Promise<void> {
    const ledger: Ledger = {
      serial: local.serial,
      result: local.result ?? "applied",
      failuresBefore: local.failuresBefore,
      hash: local.hash,
      at: local.at,
      ...(local.error ? { error: local.error } : {}),
    };
    const failed = ledger.result === "failed";
    await this.#reporter.record(ledger, {
      serial: local.serial,
      state: failed ? "failed" : "in force",
      ...(failed ? { message: local.error ?? "failed" } : { message: undefined }),
      tunnels: await this.#tunnels(),
    });
  }

  async #apply(
    desired: Desired,
    before: LocalState | undefined,
  ): Promise<{ result: Result; changes: number; error?: string }> {
    const { target, appliedBy, event } = this.#o;
    const record = await loadRecord(this.#files);
    if (record?.policyHash === desired.hash) {
      // A crash between an apply and its outcome: the record says it got there.
      const crashed = before?.phase === "applying" && before.serial === desired.serial;
      return { result: crashed ? "applied" : "unchanged", changes: 0 };
    }
    this.#local = {
      version: 1,
      serial: desired.serial,
      phase: "applying",
      hash: desired.hash,
      failuresBefore: 0,
      at: new Date().toISOString(),
      endpoints: [...this.#o.etcd.endpoints],
    };
    await saveLocal(this.#files, this.#local);
    const checked = desired.healthSeconds > 0;
    let part: { input: PolicyInput; peers: readonly string[] };
    try {
      part = await this.#part(desired, checked);
    } catch (err) {
      // A part that fails its checks (or, from an older publisher, validation) fails the
      // revision here: reported once, never retried.
      return { result: "failed", changes: 0, error: messageOf(err) };
    }
    const { input, peers } = part;
    const probe = this.#o.probe ?? pingPeers;
    const answering = peers.length > 0 ? await probe(target.runner, peers) : new Set<string>();
    this.applies.set(desired.serial, (this.applies.get(desired.serial) ?? 0) + 1);
    let changes: number;
    try {
      const r = await this.#applyPolicy(input, appliedBy);
      changes = r.plan.changes.length;
    } catch (err) {
      return { result: "failed", changes: 0, error: messageOf(err) };
    } finally {
      // The first revision this site holds: from now on the resident holds it.
      await this.#hold().catch((err: unknown) =>
        event({ event: "error", message: messageOf(err) }),
      );
    }
    if (!checked || changes === 0) return { result: "applied", changes };
    const harm = await this.#harm(desired.healthSeconds, [...answering], probe);
    if (!harm) return { result: "applied", changes };
    const reason = `health: ${harm}`;
    if (record) await this.#revert(record, desired.serial, reason);
    else
      event({
        event: "reverted",
        serial: desired.serial,
        reason: `${reason}; nothing to go back to`,
      });
    return { result: "failed", changes, error: reason };
  }

  /** What the apply broke, if anything, within `seconds`: peers that stopped answering, or etcd. */
  async #harm(
    seconds: number,
    answering: readonly string[],
    probe: PeerProbe,
  ): Promise<string | undefined> {
    const giveUp = Date.now() + seconds * 1000;
    let silent = answering;
    let etcd: string | undefined = "etcd not asked yet";
    for (;;) {
      if (silent.length > 0) {
        const now = await probe(this.#o.target.runner, silent);
        silent = silent.filter((a) => !now.has(a));
      }
      if (etcd) {
        etcd = await this.#o.etcd
          .get(desiredKey(this.#o.site))
          .then(() => undefined)
          .catch((err: unknown) => messageOf(err));
      }
      if (silent.length === 0 && !etcd) return undefined;
      if (Date.now() >= giveUp) {
        const peers =
          silent.length > 0 ? `tunnel peers ${silent.join(", ")} stopped answering` : "";
        return [peers, etcd ? `etcd is out of reach (${etcd})` : ""].filter(Boolean).join("; ");
      }
      await sleep(1_000);
    }
  }

  async #revert(record: ApplyRecord, serial: number, reason: string): Promise<void> {
    const input = await this.#input(record.policyText, "policy in force before", false);
    await this.#applyPolicy(input, `${this.#o.appliedBy} (revert)`).catch((err: unknown) =>
      this.#o.event({ event: "error", message: `revert: ${messageOf(err)}` }),
    );
    this.#o.event({ event: "reverted", serial, reason });
  }

  /**
   * The part to apply and the peers its health check pings: the state the publisher compiled,
   * checked (part.ts), or, from a publisher that sent none, the text validated here.
   */
  async #part(
    desired: Desired,
    checked: boolean,
  ): Promise<{ input: PolicyInput; peers: readonly string[] }> {
    const { site, keyDir } = this.#o;
    const state = checkedPart(desired, site);
    if (state) {
      const input = { text: desired.text, hash: desired.hash, site, keyDir, desired: state };
      return { input, peers: desired.peers ?? [] };
    }
    const input = await this.#input(desired.text, `revision ${desired.serial}`, checked);
    return { input, peers: "intent" in input ? peerAddresses(input.intent, site) : [] };
  }

  /** The policy to apply; with `peers`, validated (not from the cache) for its tunnel peers. */
  async #input(text: string, file: string, peers: boolean): Promise<PolicyInput> {
    const { site, keyDir } = this.#o;
    if (peers) {
      const { parsePolicy } = await import("../../policy/load.js");
      return { ...parsePolicy(text, file), site, keyDir };
    }
    return fromText(this.#files, { text, name: file, site, keyDir });
  }

  /** Runs `fn` when no other apply of this agent runs. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#applying.catch(() => undefined).then(fn);
    this.#applying = run;
    return run;
  }

  #tunnels(): Promise<{ up: number; of: number }> {
    return tunnelCount(this.#o.target);
  }
}
