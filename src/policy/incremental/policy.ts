import { constructFromEvents, parseEvents } from "js-yaml";
import { compileSite } from "../../compile/compile.js";
import type { SiteState } from "../../compile/desired.js";
import { type PrefixChange, withNetworkPrefix } from "../../compile/network-prefix.js";
import { policyHash } from "../hash.js";
import type { Intent } from "../intent.js";
import { type LoadedPolicy, MAX_POLICY_BYTES, parsePolicy, resolveChecked } from "../load.js";
import type { PolicyDocument } from "../schema.js";
import { Outline } from "./lines.js";
import { withMemberKey } from "./member-key.js";
import { withNetworkCidr } from "./network-cidr.js";
import { spliced } from "./patch.js";
import { withPeerKey } from "./peer-key.js";
import { changedLines, changedRegion, NotSure, type Region } from "./region.js";
import { entrySchema } from "./schema-path.js";

/** Nesting an entry may have read alone; deeper ones are read with the whole text. */
const ENTRY_DEPTH = 32;

interface Held {
  readonly outline: Outline;
  /** Unsure lines of the text (lines.ts): one anywhere, and the text is read in full. */
  readonly unsure: number;
  readonly data: PolicyDocument;
  readonly loaded: LoadedPolicy;
  /** A site's state compiled from it, when asked (compiled()) or made from the last one's. */
  readonly compiled?: SiteState;
  /** The last change's region, found in lines the outline holds the same above its start. */
  readonly region?: Region;
}

/**
 * Reads policy texts one after the other, each from the last it read valid: where the new text
 * differs from it only inside entries of one block sequence (a tunnel's member, a site's
 * network, a service), only those entries are read (YAML and schema) and spliced into the last
 * text's schema output; the intent is then resolved and checked from that output as
 * parsePolicy does. Anything the outline cannot vouch for, and every invalid text (so its
 * problems are placed exactly as ever), is read in full by parsePolicy.
 */
export class IncrementalPolicy {
  private held: Held | undefined;
  /** How many texts were read each way, for the tests and the bench. */
  readonly counts = { entries: 0, full: 0 };
  private last: "entries" | "full" | undefined;

  load(text: string, file: string): LoadedPolicy {
    const fast = this.held && this.patched(this.held, text);
    if (fast) {
      this.counts.entries++;
      this.last = "entries";
      return fast;
    }
    this.counts.full++;
    this.last = "full";
    return this.full(text, file);
  }

  /**
   * The state the last text read compiles to for `site`, when that text was read through its
   * entries (a full read leaves compiling to the caller, as ever): made from the state of the
   * text before where one member's key changed alone (peer-key.ts), else compiled, and kept.
   */
  compiled(site: string): SiteState | undefined {
    const held = this.held;
    if (!held || this.last !== "entries") return undefined;
    if (held.compiled?.site === site) return held.compiled;
    const compiled = compileSite(held.loaded.intent, site);
    this.held = { ...held, compiled };
    return compiled;
  }

  private full(text: string, file: string): LoadedPolicy {
    let data: PolicyDocument | undefined;
    const loaded = parsePolicy(text, file, { keep: (d) => (data = d) });
    if (data && !text.includes("\r")) {
      const outline = new Outline(text.split("\n"));
      this.held = { outline, unsure: outline.unsureIn(0, outline.lines.length), data, loaded };
    } else this.held = undefined;
    return loaded;
  }

  /** The text read through the held one, or undefined where only a full read will do. */
  private patched(held: Held, text: string): LoadedPolicy | undefined {
    if (held.unsure > 0 || text.includes("\r")) return undefined;
    if (text === held.loaded.text) return held.loaded;
    if (text.length * 3 > MAX_POLICY_BYTES && Buffer.byteLength(text) > MAX_POLICY_BYTES)
      return undefined;
    const after = new Outline(text.split("\n"));
    const changed = changedLines(held.outline.lines, after.lines);
    after.adopt(held.outline, changed);
    const unsure =
      held.unsure -
      held.outline.unsureIn(changed.start, changed.oldEnd) +
      after.unsureIn(changed.start, changed.newEnd);
    if (unsure > 0) return undefined;
    let region: Region | undefined;
    try {
      region = changedRegion(held.outline, after, changed, held.region);
    } catch (err) {
      if (err instanceof NotSure) return undefined;
      throw err;
    }
    if (!region) {
      // Blank lines and comments only: the same data.
      const loaded = { ...held.loaded, hash: policyHash(text), text };
      const { region: known, ...rest } = held;
      // The region found before holds for the new text while its lines above are the same.
      const kept = known && known.start <= changed.start ? { region: known } : {};
      this.held = { ...rest, outline: after, loaded, ...kept };
      return loaded;
    }
    const entries = this.entries(held, after, region);
    if (!entries) return undefined;
    const data = spliced(held.data, region.path, region.index, region.oldCount, entries);
    const keyed = withMemberKey(held.data, held.loaded.intent, region, entries);
    const moved = keyed
      ? undefined
      : withNetworkCidr(held.data, held.loaded.intent, region, entries);
    let intent = keyed?.intent ?? moved?.intent;
    if (!intent) {
      const checked = resolveChecked(data);
      // Problems are placed in the text by the full reader, as every invalid text's are.
      if (!checked.ok) return undefined;
      intent = checked.intent;
    }
    const loaded = { intent, hash: policyHash(text), text };
    const compiled =
      held.compiled &&
      (keyed
        ? withPeerKey(held.compiled, intent, keyed.change)
        : moved && compiledMoved(held.compiled, intent, moved.change));
    this.held = {
      outline: after,
      unsure,
      data,
      loaded,
      region,
      ...(compiled ? { compiled } : {}),
    };
    return loaded;
  }

  /** The region's entries read again through their schema, or undefined if not sure. */
  private entries(held: Held, after: Outline, region: Region): unknown[] | undefined {
    const { path, col, start, newEnd, oldCount, newCount } = region;
    // A sequence left empty reads as null, not []: the schema says what that means.
    if (newCount === 0 && entriesLeft(held, region) === 0) return undefined;
    let schema: ReturnType<typeof entrySchema>;
    try {
      schema = entrySchema(path);
    } catch (err) {
      if (err instanceof NotSure) return undefined;
      throw err;
    }
    if (schema.counted && oldCount !== newCount) return undefined;
    const slice = after.lines
      .slice(start, newEnd)
      .map((line, k) => (after.firstCol(start + k) === undefined ? "" : line.slice(col)));
    const source = slice.join("\n");
    if (source.includes("__proto__") || source.includes("\\")) return undefined;
    let raw: unknown;
    try {
      const docs = constructFromEvents(parseEvents(source, { maxDepth: ENTRY_DEPTH }), {
        source,
        maxAliases: 0,
      });
      raw = newCount === 0 ? [] : docs[0];
      if (docs.length !== (newCount === 0 ? 0 : 1)) return undefined;
    } catch {
      return undefined;
    }
    if (!Array.isArray(raw) || raw.length !== newCount) return undefined;
    const entries: unknown[] = [];
    for (const item of raw) {
      const parsed = schema.entry.safeParse(item);
      if (!parsed.success) return undefined;
      entries.push(parsed.data);
    }
    return entries;
  }
}

/** The held state with one network's prefix moved (compile/network-prefix.ts). */
function compiledMoved(state: SiteState, intent: Intent, change: PrefixChange) {
  const site = intent.sites.find((s) => s.name === change.site);
  return site && withNetworkPrefix(state, site, change);
}

/** Entries of the region's sequence outside the region, in the held data. */
function entriesLeft(held: Held, region: Region): number {
  let node: unknown = held.data;
  for (const step of region.path) node = (node as Record<string | number, unknown>)[step];
  return Array.isArray(node) ? node.length - region.oldCount : 0;
}
