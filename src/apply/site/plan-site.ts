import { compileSite } from "../../compile/compile.js";
import type { SiteNetwork, SiteState } from "../../compile/desired.js";
import {
  guardRetired,
  retiredComment,
  retiredNetworks,
  retiredSet,
} from "../../compile/retired.js";
import { diff } from "../../plan/diff.js";
import type { LiveState, Ownership, Plan } from "../../plan/types.js";
import type { Intent } from "../../policy/intent.js";
import type { PolicyInput, PolicySource } from "../source/input.js";
import { relayFilesOf } from "../state/files.js";
import { type Interrupted, interruptedBy, type Journal, loadJournal } from "../state/journal.js";
import { type ApplyRecord, readRecord } from "../state/record.js";
import type { Target } from "../target.js";
import { currentOwnership } from "./ownership.js";
import { checkProtocol } from "./protocol.js";
import {
  type LiveReader,
  type LiveWanted,
  ownedNames,
  readLiveWhile,
  wantedFor,
} from "./read-live.js";
import { checkSite } from "./site-check.js";

const protocolOf = (p: PolicyInput) =>
  "desired" in p ? p.desired.protocol : p.intent.settings.routeProtocol;

/**
 * The source read once, when first asked for, as a promise that never counts as unhandled:
 * it may fail (a bad policy) while the caller awaits something else, and is awaited, and its
 * error thrown, later.
 */
export function once(source: PolicySource): () => Promise<PolicyInput> {
  if (typeof source !== "function") return () => Promise.resolve(source);
  let input: Promise<PolicyInput> | undefined;
  return () => {
    if (!input) {
      input = source();
      input.catch(() => undefined);
    }
    return input;
  };
}

export interface Planned {
  readonly desired: SiteState;
  readonly live: LiveState;
  readonly owned: Ownership;
  readonly plan: Plan;
  readonly record: ApplyRecord | undefined;
  /** The record file's text as read, for putting it back exactly on a revert. */
  readonly recordText: string | undefined;
  readonly journal: Journal | undefined;
  /** An apply that left its journal: under way, or killed. */
  readonly interrupted: Interrupted | undefined;
  readonly wanted: LiveWanted;
  /** Fail-closed networks that left the policy and keep their guard (compile/retired.ts). */
  readonly retired: readonly SiteNetwork[];
  /** The policy's own state, before those guards: what the compiled cache keeps. */
  readonly compiled: SiteState;
  /** What the record keeps of them: the fail-closed networks in force, and `retired`. */
  readonly guarded: readonly SiteNetwork[];
  /** The state the policy in force compiled to (inForceOf), undefined where none is known. */
  readonly inForce: () => SiteState | undefined;
}

/**
 * The state compiled from a policy validated by this process, then one full garbage collection:
 * validating 10,000 objects leaves some 90 MB of garbage (the YAML reader's events and tree,
 * zod's copy) beside a few tens of MB kept, and V8 schedules its next full collection from the
 * heap it grew to, so the live read, verify and record that follow grew the heap 25–35 MB past
 * validation's peak first. The collection (some 20 ms) runs while ip and nft are read.
 * bin/netpol.js exposes `gc`; where it is not (tests, a library caller) it is skipped.
 */
function compileFresh(intent: Intent, site: string): SiteState {
  const desired = compileSite(intent, site);
  globalThis.gc?.();
  return desired;
}

/**
 * The state the policy in force compiled to, when first asked: the resident's, where it holds
 * it; the policy's own, when it is the policy in force; else the record's text compiled again.
 * Only that last one needs the policy parser: a resident applying states compiled elsewhere (the
 * fleet agent) never loads it (bench/agent-memory.ts).
 */
async function inForceOf(
  record: ApplyRecord | undefined,
  policy: PolicyInput,
  compiled: SiteState,
  held: SiteState | undefined,
): Promise<() => SiteState | undefined> {
  if (held) return () => held;
  if (!record) return () => undefined;
  if (record.policyHash === policy.hash && record.site === policy.site) return () => compiled;
  const { stateInForce } = await import("../source/in-force.js");
  let state: { readonly value: SiteState | undefined } | undefined;
  return () => {
    state ??= { value: stateInForce(record) };
    return state.value;
  };
}

/** What plan and apply say of a retired network's guard. */
export const retiredNote = (n: SiteNetwork) => {
  const family = n.cidr.includes(":") ? 6 : 4;
  return `network ${n.name} (${n.cidr}) left the policy, but ${n.device} is still here: it failed closed, so what arrives from it on ${n.device} stays dropped (nft set ${retiredSet(family)}, counted by the rule "${retiredComment(family)}") until ${n.device} is gone or a network of ${n.cidr} is back in the policy`;
};

export interface PlanOptions {
  /** A real rename: plan a site other than the one the record says runs here. */
  readonly replaceSite?: boolean | undefined;
  /** `down`: netpol leaves, and the guards of networks that left the policy go with it. */
  readonly releaseRetired?: boolean | undefined;
  /**
   * The state last applied, where the caller holds it (a resident process): the plan names the
   * rules a change touches without validating the policy in force again (at 10,000 objects,
   * as long as validating the new one). Undefined: the record's text is compiled.
   */
  readonly inForce?: (() => SiteState | undefined) | undefined;
}

export async function planSite(
  target: Target,
  source: PolicySource,
  /** An apply keeps what its rollback needs from the read (WireGuard configs). */
  forApply = false,
  /** How the live state is read: all of it from the tools, unless a resident knows better. */
  readLiveState: LiveReader = readLiveWhile,
  options: PlanOptions = {},
): Promise<Planned> {
  const files = target.files;
  // ip and nft, the slow part of the read, need only the protocol: they start first, and the
  // policy is validated and compiled and the record and the journal read while they run. What
  // netpol owns (the record, the journal) adds only sysctl keys and WireGuard names to the read.
  let reading!: () => void;
  const input = new Promise<void>((started) => {
    reading = started;
  }).then(once(source));
  const known = input.then(async (policy) => {
    const desired = "desired" in policy ? policy.desired : compileFresh(policy.intent, policy.site);
    const read = await readRecord(files);
    checkSite(files, read?.record, policy.site, options.replaceSite);
    const journal = await loadJournal(files);
    await checkProtocol(target, desired, read?.record.protocol);
    const wanted = wantedFor(desired, {
      ...ownedNames(read?.record.ownership, journal),
      relay: relayFilesOf(files),
    });
    return { desired, read, journal, wanted, policy };
  });
  // Only this read keeps the WireGuard configs: the verify and rollback reads need none, and at
  // 10,000 peers each copy is megabytes of strings.
  const protocol = input.then(protocolOf);
  const toRead = known.then((k) => ({ ...k.wanted, wireguardConfigs: forApply }));
  // A bad policy rejects these two as soon as it is read; a reader may await them only after
  // its own first read (the resident's), so they count as handled here: the error is thrown
  // below, from `known`. Unhandled, it would end a resident process.
  protocol.catch(() => undefined);
  toRead.catch(() => undefined);
  const live = readLiveState(target.runner, protocol, toRead);
  reading();
  const [liveState, { desired: compiled, read, journal, wanted, policy }] = await Promise.all([
    live,
    known,
  ]).catch(async (err: unknown) => {
    // A read that failed (a tool missing, say) is said only of a policy that validated.
    await known;
    throw err;
  });
  const record = read?.record;
  const inForce = await inForceOf(record, policy, compiled, options.inForce?.());
  const owned = currentOwnership(record?.ownership, journal, liveState);
  const now = compiled.networks ?? [];
  // A port this apply removes (a link netpol made that the policy no longer has) needs no guard:
  // one kept for it would be gone from the kernel at once, and the next plan would differ.
  const kept = new Set(compiled.links.map((l) => l.name));
  const removed = new Set(owned.links.filter((name) => !kept.has(name)));
  const devices = new Set(liveState.links.map((l) => l.name).filter((n) => !removed.has(n)));
  const retired = options.releaseRetired
    ? []
    : retiredNetworks(record?.guarded ?? [], compiled, devices);
  const desired = guardRetired(compiled, retired);
  return {
    desired,
    live: liveState,
    owned,
    plan: diff(desired, liveState, owned, inForce),
    retired,
    compiled,
    guarded: [...now.filter((n) => n.failClosed), ...retired],
    record,
    recordText: read?.text,
    journal,
    interrupted: interruptedBy(journal, target.host),
    wanted,
    inForce,
  };
}
