import { CORE_SCHEMA } from "js-yaml";

/**
 * A reader for the plain YAML that policies are written in: block mappings and sequences,
 * one-line flow collections, plain scalars, quoted scalars without escapes, comments. It gives
 * exactly what js-yaml's reader gives (scalars are resolved by js-yaml's own core schema) and
 * gives up on anything else — anchors, tags, block scalars, escapes, multi-line scalars or
 * flow collections, document markers, duplicate keys, tabs, control characters — which then go
 * to the readers in read-yaml.ts, as every text went before. It exists for speed: one pass over
 * the lines, with no event list to build and walk, is several times faster on a policy of
 * 10,000 objects (issue 19), and allocates only the data.
 */

/** Deeper than any policy: below js-yaml's limit, so js-yaml reports the hostile ones. */
const MAX_DEPTH = 48;
/** Thrown, and caught in readPlainYaml, where the text leaves the subset. */
const NOT_PLAIN = Symbol("not plain YAML");

const SPACE = 32;
const HASH = 35;
const DASH = 45;
const COLON = 58;

/** The text's data, or undefined when the text is not in the subset (never an error). */
export function readPlainYaml(text: string): { data: unknown } | undefined {
  // Tabs, carriage returns, control characters, characters some YAML reads as line breaks
  // (U+0085, U+2028, U+2029), the byte-order mark and surrogates: the full readers' business.
  if (/[^\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]/.test(text)) {
    return undefined;
  }
  try {
    return { data: new Reader(text).document(text) };
  } catch (err) {
    if (err === NOT_PLAIN) return undefined;
    throw err;
  }
}

function bail(): never {
  throw NOT_PLAIN;
}

/** A plain scalar's value as js-yaml reads it: null, a boolean, a number or the string. */
function resolve(raw: string): unknown {
  return CORE_SCHEMA.resolveImplicitScalarTag(raw).value;
}

/** `-` and a space (or the line's end) at column c: a block sequence entry. */
function isEntry(line: string, c: number): boolean {
  return line.charCodeAt(c) === DASH && (c + 1 === line.length || line.charCodeAt(c + 1) === SPACE);
}

/** Characters that start something other than a plain scalar (`-` alone is an entry). */
const INDICATOR = /[?:,[\]{}#&*!|>'"%@`]/;

function plainStart(line: string, c: number): boolean {
  const ch = line[c] ?? "";
  // `-x` is a plain scalar; `- `, and `-` before a flow indicator (`[-]`), are not.
  if (ch === "-") return c + 1 < line.length && !/[ ,[\]{}#]/.test(line[c + 1] as string);
  return ch !== "" && ch !== " " && !INDICATOR.test(ch);
}

/** Spaces from c, then the line's end or a comment. */
function restIsEmpty(line: string, c: number): boolean {
  let k = c;
  while (line.charCodeAt(k) === SPACE) k++;
  return k === line.length || (line.charCodeAt(k) === HASH && k > c);
}

class Reader {
  private readonly lines: string[];
  private i = 0;
  private depth = 0;
  /**
   * Just past the quoted scalar or flow node read last. A field, not a `{ value, end }` per
   * node: a hub's 10,000 one-line spokes are some 150,000 flow nodes.
   */
  private end = 0;

  constructor(text: string) {
    this.lines = text.split("\n");
  }

  document(text: string): unknown {
    if (this.indent() !== 0) bail();
    // Document markers and directives: one document is all js-yaml's path is sure of.
    if (/^(?:---|\.\.\.)(?: |$)|^%/m.test(text)) bail();
    const data = this.block(0);
    if (this.indent() !== -1) bail();
    return data;
  }

  private line(): string {
    return this.lines[this.i] as string;
  }

  /** The indentation of the next line with content (blank and comment lines skipped), or -1. */
  private indent(): number {
    while (this.i < this.lines.length) {
      const line = this.line();
      let k = 0;
      while (line.charCodeAt(k) === SPACE) k++;
      if (k < line.length && line.charCodeAt(k) !== HASH) return k;
      this.i++;
    }
    return -1;
  }

  /** The block node whose first line (the current one) has content at column `at`. */
  private block(at: number): unknown {
    if (++this.depth > MAX_DEPTH) bail();
    const value = isEntry(this.line(), at) ? this.sequence(at) : this.mapping(at, at);
    this.depth--;
    return value;
  }

  private sequence(at: number): unknown[] {
    const items: unknown[] = [];
    while (this.indent() === at && isEntry(this.line(), at)) {
      const line = this.line();
      let c = at + 1;
      while (line.charCodeAt(c) === SPACE) c++;
      if (restIsEmpty(line, at + 1)) {
        this.i++;
        const next = this.indent();
        items.push(next > at ? this.block(next) : null);
      } else items.push(this.inline(line, c, at, true));
      if (this.indent() > at) bail();
    }
    return items;
  }

  /** A mapping whose keys sit at column `at`; its first key, on the current line, at `first`. */
  private mapping(at: number, first: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let col = first;
    for (;;) {
      const line = this.line();
      const { key, after } = this.key(line, col);
      if (key === "__proto__" || Object.hasOwn(out, key)) bail();
      let value: unknown;
      if (restIsEmpty(line, after)) {
        this.i++;
        const next = this.indent();
        const compact = next === at && isEntry(this.line(), at);
        value = next > at || compact ? this.block(next) : null;
      } else {
        let c = after;
        while (line.charCodeAt(c) === SPACE) c++;
        value = this.inline(line, c, at, false);
      }
      out[key] = value;
      const next = this.indent();
      if (next > at || (next === at && isEntry(this.line(), at))) bail();
      if (next < at) return out;
      col = at;
    }
  }

  /** The end of an implicit key starting at c (the index of its `:`), or -1 when none. */
  private keyColon(line: string, c: number): number {
    let k = c;
    const q = line[c];
    if (q === '"' || q === "'") {
      this.quoted(line, c);
      k = this.end;
      while (line.charCodeAt(k) === SPACE) k++;
      // `"a":b` is a flow mapping's spelling: in a block one js-yaml wants a space after `:`.
      const spaced = k + 1 === line.length || line.charCodeAt(k + 1) === SPACE;
      return line.charCodeAt(k) === COLON && spaced ? k : -1;
    }
    for (;;) {
      k = line.indexOf(":", k);
      if (k < 0) return -1;
      if (k + 1 === line.length || line.charCodeAt(k + 1) === SPACE) {
        const hash = line.indexOf(" #", c);
        return hash >= 0 && hash < k ? -1 : k;
      }
      k++;
    }
  }

  private key(line: string, c: number): { key: string; after: number } {
    const colon = this.keyColon(line, c);
    if (colon < 0) bail();
    const q = line[c];
    if (q === '"' || q === "'") return { key: this.quoted(line, c), after: colon + 1 };
    const raw = line.slice(c, colon).trimEnd();
    if (!plainStart(line, c) || /[[\]{},"'#]/.test(raw)) bail();
    return { key: String(resolve(raw)), after: colon + 1 };
  }

  /**
   * The node that starts at column c of the current line, after `- ` or `key: `; a mapping
   * (`- key: value`) only where `mappingOk`. Nothing of it may continue on a deeper line.
   */
  private inline(line: string, c: number, parent: number, mappingOk: boolean): unknown {
    const ch = line[c];
    let value: unknown;
    if (ch === "{" || ch === "[") {
      value = this.flow(line, c);
      if (!restIsEmpty(line, this.end)) bail();
      this.i++;
    } else if (this.keyColon(line, c) >= 0) {
      if (!mappingOk) bail();
      if (++this.depth > MAX_DEPTH) bail();
      value = this.mapping(c, c);
      this.depth--;
      return value;
    } else if (ch === '"' || ch === "'") {
      value = this.quoted(line, c);
      if (!restIsEmpty(line, this.end)) bail();
      this.i++;
    } else {
      if (!plainStart(line, c)) bail();
      const hash = line.indexOf(" #", c);
      const raw = (hash < 0 ? line.slice(c) : line.slice(c, hash)).trimEnd();
      value = resolve(raw);
      this.i++;
    }
    if (this.indent() > parent) bail();
    return value;
  }

  /** A quoted scalar closed on its line, without escapes; `end` is left just past its quote. */
  private quoted(line: string, c: number): string {
    const q = line[c] as string;
    if (q === '"') {
      const close = line.indexOf('"', c + 1);
      if (close < 0) bail();
      const value = line.slice(c + 1, close);
      if (value.includes("\\")) bail();
      this.end = close + 1;
      return value;
    }
    let value = "";
    let k = c + 1;
    for (;;) {
      const close = line.indexOf("'", k);
      if (close < 0) bail();
      value += line.slice(k, close);
      if (line[close + 1] !== "'") {
        this.end = close + 1;
        return value;
      }
      value += "'";
      k = close + 2;
    }
  }

  /** A flow collection closed on its line; `end` is left just past it. */
  private flow(line: string, c: number): unknown {
    if (++this.depth > MAX_DEPTH) bail();
    const mapping = line[c] === "{";
    const close = mapping ? "}" : "]";
    const out: Record<string, unknown> | unknown[] = mapping ? {} : [];
    let k = c + 1;
    for (let first = true; ; first = false) {
      while (line.charCodeAt(k) === SPACE) k++;
      if (line[k] === close) {
        // `[a, ]`: an empty entry after a comma is left to js-yaml.
        if (!first) bail();
        break;
      }
      if (mapping) {
        const key = this.flowNode(line, k, true);
        if (typeof key === "object" && key !== null) bail();
        k = this.end;
        while (line.charCodeAt(k) === SPACE) k++;
        if (line.charCodeAt(k) !== COLON || line.charCodeAt(k + 1) !== SPACE) bail();
        const name = String(key);
        if (name === "__proto__" || Object.hasOwn(out, name)) bail();
        (out as Record<string, unknown>)[name] = this.flowNode(line, k + 2, false);
        k = this.end;
      } else {
        (out as unknown[]).push(this.flowNode(line, k, false));
        k = this.end;
      }
      while (line.charCodeAt(k) === SPACE) k++;
      if (line[k] === close) break;
      if (line[k] !== ",") bail();
      k++;
    }
    this.depth--;
    this.end = k + 1;
    return out;
  }

  /** One node inside a flow collection, spaces before it skipped; `end` is left just past it. */
  private flowNode(line: string, c: number, isKey: boolean): unknown {
    let k = c;
    while (line.charCodeAt(k) === SPACE) k++;
    const ch = line[k];
    if (ch === "{" || ch === "[") {
      if (isKey) bail();
      return this.flow(line, k);
    }
    if (ch === '"' || ch === "'") return this.quoted(line, k);
    if (!plainStart(line, k)) bail();
    // A plain scalar in a flow ends at a flow indicator, at `: ` or a `:` before one, or at a
    // comment (the collection is then not closed on this line: the caller gives up).
    let end = k;
    for (; end < line.length; end++) {
      const e = line[end];
      if (e === "," || e === "[" || e === "]" || e === "{" || e === "}") break;
      if (e === ":") {
        const after = line[end + 1];
        if (after === " " || after === undefined) break;
        if (after === "," || after === "[" || after === "]" || after === "{" || after === "}") {
          bail();
        }
      }
      if (e === "#" && line[end - 1] === " ") bail();
    }
    const raw = line.slice(k, end).trimEnd();
    // `[a: b]` is a mapping inside a sequence: left to js-yaml.
    if (!isKey && line[end] === ":") bail();
    this.end = end;
    return resolve(raw);
  }
}
