import {
  constructFromEvents,
  EVENT_ID,
  type Event,
  getScalarValue,
  parseEvents,
  YAMLException,
} from "js-yaml";
import type { Document, LineCounter } from "yaml";
import type { Diagnostic, LocatedDiagnostic } from "./diagnostic.js";
import { readPlainYaml } from "./plain-yaml.js";
import { yamlPackage } from "./yaml-package.js";

/**
 * Policy text → plain data plus a way to place diagnostics in the text. The plain reader
 * (plain-yaml.ts) reads the common subset in one pass and gives up on the rest; two readers
 * share the rest: js-yaml's event parser reads a plain document several times faster and with
 * less memory than the `yaml` package's Document (which keeps a node per value), and it bounds
 * nesting; the `yaml` package reads everything else (aliases, syntax errors, duplicate keys),
 * because it reports every such problem at once, with messages users already know, and
 * bounds alias expansion.
 */

/** Deeper than any policy needs; a hostile document nested thousands deep stops here. */
const MAX_DEPTH = 64;
/** Aliased nodes one document may expand to: enough for shared blocks, not for a billion laughs. */
const MAX_ALIAS_COUNT = 100;

export type ReadYaml =
  | {
      readonly ok: true;
      readonly data: unknown;
      readonly place: (d: Diagnostic) => LocatedDiagnostic;
    }
  | { readonly ok: false; readonly problems: LocatedDiagnostic[] };

export function readYaml(text: string, file: string): ReadYaml {
  const plain = readPlainYaml(text);
  if (plain) return { ok: true, data: plain.data, place: placeIn(text, file) };
  try {
    return readFast(text, file);
  } catch (err) {
    if (!(err instanceof YAMLException)) throw err;
    const depth = /^nesting exceeded maxDepth/.test(err.reason);
    if (depth && err.mark) {
      const at = { file, line: err.mark.line + 1, col: err.mark.column + 1, path: [] };
      const message = `YAML: nested deeper than ${MAX_DEPTH} levels; a policy needs a handful`;
      return { ok: false, problems: [{ ...at, message }] };
    }
    return readFull(text, file);
  }
}

/**
 * The fast reader: no aliases, one document; anything else throws for the full reader. The
 * parser's events are dropped once read and parsed again only to place a diagnostic.
 */
function readFast(text: string, file: string): ReadYaml {
  const events = parseEvents(text, { maxDepth: MAX_DEPTH });
  // A tag (`!shell`, `!!binary`) asks for a meaning a policy does not have: the full reader
  // says so, where js-yaml would read some of them as plain strings.
  // Every tag starts with '!': a text without one has none, and its events need no second pass.
  if (text.includes("!") && events.some((e) => "tagStart" in e && e.tagStart >= 0)) {
    throw new YAMLException("tags");
  }
  const docs = constructFromEvents(events, { source: text, maxAliases: 0 });
  if (docs.length !== 1) throw new YAMLException("not exactly one document");
  return { ok: true, data: docs[0], place: placeIn(text, file) };
}

/** Places a diagnostic by its path, from js-yaml's events parsed again when one is placed. */
function placeIn(text: string, file: string): (d: Diagnostic) => LocatedDiagnostic {
  let offsets: Map<string, number> | undefined;
  let lines: number[] | undefined;
  return (d: Diagnostic): LocatedDiagnostic => {
    offsets ??= nodeOffsets(text, parseEvents(text, { maxDepth: MAX_DEPTH }));
    lines ??= lineStarts(text);
    for (let depth = d.path.length; depth >= 0; depth--) {
      const offset = offsets.get(pathKey(d.path.slice(0, depth)));
      if (offset !== undefined) return { ...d, file, ...linePos(lines, offset) };
    }
    return { ...d, file, line: 1, col: 1 };
  };
}

const pathKey = (path: readonly (string | number)[]) => path.join("\u0000");

interface Frame {
  readonly kind: "document" | "sequence" | "mapping";
  /** undefined inside a complex mapping key, whose nodes no diagnostic can name. */
  readonly path: (string | number)[] | undefined;
  index: number;
  key: string | undefined;
  wantKey: boolean;
}

/** Where every node of the document starts, by its path: built only when a diagnostic needs it. */
function nodeOffsets(text: string, events: readonly Event[]): Map<string, number> {
  const offsets = new Map<string, number>();
  const stack: Frame[] = [];
  /** The path of the node that starts now, or undefined for a mapping key or an unnamed node. */
  const enter = (): (string | number)[] | undefined => {
    const top = stack.at(-1);
    if (!top) return undefined;
    if (top.kind === "document") return top.path;
    if (top.kind === "sequence") return top.path && [...top.path, top.index++];
    if (top.wantKey) return undefined;
    top.wantKey = true;
    return top.path && top.key !== undefined ? [...top.path, top.key] : undefined;
  };
  const record = (path: (string | number)[] | undefined, offset: number) => {
    if (path && offset >= 0) offsets.set(pathKey(path), offset);
  };
  for (const e of events) {
    switch (e.type) {
      case EVENT_ID.DOCUMENT:
        stack.push({ kind: "document", path: [], index: 0, key: undefined, wantKey: false });
        break;
      case EVENT_ID.POP:
        stack.pop();
        break;
      case EVENT_ID.SEQUENCE:
      case EVENT_ID.MAPPING: {
        const top = stack.at(-1);
        const isKey = top?.kind === "mapping" && top.wantKey;
        if (isKey) {
          top.wantKey = false;
          top.key = undefined;
        }
        const path = isKey ? undefined : enter();
        record(path, e.start);
        const kind = e.type === EVENT_ID.SEQUENCE ? "sequence" : "mapping";
        stack.push({ kind, path, index: 0, key: undefined, wantKey: true });
        break;
      }
      case EVENT_ID.SCALAR: {
        const top = stack.at(-1);
        if (top?.kind === "mapping" && top.wantKey) {
          top.wantKey = false;
          top.key = getScalarValue(text, e);
        } else record(enter(), e.valueStart);
        break;
      }
      case EVENT_ID.ALIAS:
        record(enter(), e.anchorStart);
        break;
    }
  }
  return offsets;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

function linePos(starts: readonly number[], offset: number): { line: number; col: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: offset - (starts[lo] as number) + 1 };
}

/** The full reader: every syntax problem located, aliases expanded up to a bound. */
function readFull(text: string, file: string): ReadYaml {
  const { LineCounter, parseDocument } = yamlPackage();
  const lines = new LineCounter();
  const at = (offset: number, message: string): LocatedDiagnostic => ({
    file,
    ...lines.linePos(offset),
    path: [],
    message,
  });
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return { ok: false, problems: [at(0, "YAML: nested too deeply to read")] };
  }
  // Warnings too: an unresolved tag is one, and its value would be read as something else.
  if (doc.errors.length > 0 || doc.warnings.length > 0) {
    const problems = [...doc.errors, ...doc.warnings].map((e) => {
      const message = e.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "";
      return at(e.pos[0], `YAML: ${message}`);
    });
    return { ok: false, problems };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The `yaml` package throws a ReferenceError when aliases expand past maxAliasCount.
    if (!(err instanceof ReferenceError || err instanceof RangeError)) throw err;
    const anchor = /[&*][^\s,[\]{}]/.exec(text)?.index ?? 0;
    const message = `YAML: aliases expand to more than ${MAX_ALIAS_COUNT} nodes (an alias bomb?); write the values out`;
    return { ok: false, problems: [at(anchor, message)] };
  }
  if (loops(data)) {
    const anchor = /[&*][^\s,[\]{}]/.exec(text)?.index ?? 0;
    return {
      ok: false,
      problems: [
        at(anchor, "YAML: an alias refers to a node that holds it (a loop); write the values out"),
      ],
    };
  }
  const place = (d: Diagnostic) => locate(doc, lines, file, d);
  return { ok: true, data, place };
}

/** True when the data holds itself: an alias to one of its own ancestors. */
function loops(data: unknown, ancestors = new Set<object>()): boolean {
  if (typeof data !== "object" || data === null) return false;
  if (ancestors.has(data)) return true;
  ancestors.add(data);
  const children = Array.isArray(data) ? data : Object.values(data);
  const found = children.some((child) => loops(child, ancestors));
  ancestors.delete(data);
  return found;
}

/** Places a diagnostic at the deepest node of its path that the document has. */
function locate(doc: Document, lines: LineCounter, file: string, d: Diagnostic): LocatedDiagnostic {
  for (let depth = d.path.length; depth >= 0; depth--) {
    const node = doc.getIn(d.path.slice(0, depth), true) as
      | { range?: [number, number, number] }
      | undefined;
    const offset = node?.range?.[0] ?? (depth === 0 ? doc.contents?.range?.[0] : undefined);
    if (offset !== undefined) return { ...d, file, ...lines.linePos(offset) };
  }
  return { ...d, file, line: 1, col: 1 };
}
