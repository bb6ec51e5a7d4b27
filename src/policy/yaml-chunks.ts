/**
 * Reads a large block-style YAML document a slice at a time, so that the YAML parser's events
 * (about 100 bytes each, three times the size of the data they describe) never all live at
 * once: at 10,000 objects that is some 35 MB of peak memory. The text is cut only where its
 * indentation alone says a block mapping or sequence entry starts; anything else (a document
 * marker, a flow or quoted key, a less indented line, a duplicate or `__proto__` key) returns
 * undefined so the caller reads the whole text at once, and so does any error of a slice: the
 * caller's whole-text reader then reports it exactly as before.
 */

/** Reads one slice as a document whose root is nested `levels` deep in the whole document. */
export type ReadSlice = (slice: string, levels: number) => unknown;

/** A slice this large or larger is read on its own; smaller entries are read together. */
const SLICE_CHARS = 64 * 1024;

class NotChunked extends Error {}

interface Line {
  readonly start: number;
  /** Leading spaces, or -1 for a blank or comment-only line (it starts no entry). */
  readonly indent: number;
}

export function readInChunks(text: string, read: ReadSlice): unknown {
  if (text.length < 2 * SLICE_CHARS || text.includes("\r")) return undefined;
  const lines = splitLines(text);
  try {
    return readBlock(text, lines, 0, lines.length, 0, read);
  } catch (err) {
    if (err instanceof NotChunked) return undefined;
    throw err;
  }
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  for (let start = 0; start < text.length; ) {
    const end = text.indexOf("\n", start);
    const stop = end === -1 ? text.length : end;
    let i = start;
    while (i < stop && text.charCodeAt(i) === 32) i++;
    const blank = i === stop || text.charCodeAt(i) === 35; // "#"
    lines.push({ start, indent: blank ? -1 : i - start });
    start = stop + 1;
  }
  return lines;
}

const MAPPING_ENTRY = /[A-Za-z0-9_][A-Za-z0-9_.-]*:(?:[ \t]|$)/my;
const SEQUENCE_ENTRY = /-(?:[ \t]|$)/my;
/** A mapping entry whose value starts on the next line: `key:` and perhaps a comment. */
const KEY_ALONE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*:[ \t]*(?:#.*)?$/;

/**
 * The block collection in lines [from, to), whose entries start at column `indent`: entries
 * are read in slices of about SLICE_CHARS, and an entry larger than that is split again.
 */
function readBlock(
  text: string,
  lines: readonly Line[],
  from: number,
  to: number,
  indent: number,
  read: ReadSlice,
  levels = 0,
): unknown {
  const entries: number[] = [];
  let first: number | undefined;
  for (let i = from; i < to; i++) {
    const line = lines[i] as Line;
    if (line.indent === -1 || line.indent > indent) continue;
    if (line.indent < indent) throw new NotChunked();
    entries.push(i);
    first ??= i;
  }
  if (first === undefined) throw new NotChunked();
  const sequence = startsEntry(text, lines[first] as Line, SEQUENCE_ENTRY);
  const pattern = sequence ? SEQUENCE_ENTRY : MAPPING_ENTRY;
  if (!entries.every((i) => startsEntry(text, lines[i] as Line, pattern))) throw new NotChunked();

  const result: unknown[] | Record<string, unknown> = sequence ? [] : {};
  const add = (value: unknown) => {
    if (Array.isArray(result)) {
      if (!Array.isArray(value)) throw new NotChunked();
      for (const item of value) result.push(item);
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new NotChunked();
    for (const [key, item] of Object.entries(value)) {
      if (key === "__proto__" || Object.hasOwn(result, key)) throw new NotChunked();
      result[key] = item;
    }
  };
  const offset = (i: number) => (i < lines.length ? (lines[i] as Line).start : text.length);
  let sliceFrom = from;
  const flush = (until: number) => {
    if (until > sliceFrom) add(read(text.slice(offset(sliceFrom), offset(until)), levels));
    sliceFrom = until;
  };
  for (let e = 0; e < entries.length; e++) {
    const start = entries[e] as number;
    const end = entries[e + 1] ?? to;
    if (offset(end) - offset(start) < SLICE_CHARS) {
      if (offset(end) - offset(sliceFrom) >= SLICE_CHARS) flush(end);
      continue;
    }
    const split = sequence
      ? splitItem(text, lines, start, end, indent, read, levels)
      : splitValue(text, lines, start, end, indent, read, levels);
    if (split === undefined) {
      flush(end);
      continue;
    }
    flush(start);
    add(split);
    sliceFrom = end;
  }
  flush(to);
  return result;
}

/**
 * Lines [start, end) hold one large entry of a block at column `indent`, itself `levels` deep:
 * its value read in slices, ready to add to the block, or undefined to read it whole.
 */
type SplitEntry = (
  text: string,
  lines: readonly Line[],
  start: number,
  end: number,
  indent: number,
  read: ReadSlice,
  levels: number,
) => unknown[] | Record<string, unknown> | undefined;

/** A large `key:` entry whose value is a block below it, read as `{ key: value }`. */
const splitValue: SplitEntry = (text, lines, start, end, indent, read, levels) => {
  const line = lines[start] as Line;
  const keyLine = text.slice(line.start + indent, (lines[start + 1] as Line).start).trimEnd();
  if (!KEY_ALONE.test(keyLine)) return undefined;
  let child = start + 1;
  while (child < end && (lines[child] as Line).indent === -1) child++;
  const childIndent = child < end ? (lines[child] as Line).indent : -1;
  if (childIndent <= indent) throw new NotChunked();
  // The key as the parser reads it (`True:` is the key "true"), from its line alone.
  const [key] = Object.keys(read(keyLine, levels) as object);
  if (key === undefined) throw new NotChunked();
  return { [key]: readBlock(text, lines, child, end, childIndent, read, levels + 1) };
};

/**
 * A large `- key: value` item whose mapping goes on below it: read as the block mapping it is,
 * with the dash blanked out so that its first line lines up with the rest.
 */
const splitItem: SplitEntry = (text, lines, start, end, indent, read, levels) => {
  const line = lines[start] as Line;
  const dash = line.start + indent;
  let column = dash + 1;
  while (text.charCodeAt(column) === 32) column++;
  MAPPING_ENTRY.lastIndex = column;
  if (column === dash + 1 || !MAPPING_ENTRY.test(text)) return undefined;
  const blanked = `${text.slice(0, dash)} ${text.slice(dash + 1)}`;
  const inner = [...lines];
  inner[start] = { start: line.start, indent: column - line.start };
  return [readBlock(blanked, inner, start, end, column - line.start, read, levels + 1)];
};

function startsEntry(text: string, line: Line, pattern: RegExp): boolean {
  pattern.lastIndex = line.start + line.indent;
  return pattern.test(text);
}
