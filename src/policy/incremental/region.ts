import type { Outline, Token } from "./lines.js";

/** A path into the policy's data: mapping keys and sequence indexes. */
export type DataPath = readonly (string | number)[];

/**
 * Where two texts differ, as whole entries of one block sequence: lines [start, oldEnd) of the
 * old text became [start, newEnd) of the new, holding entries `index`.. of the sequence at
 * `path` whose dashes stand in column `col` (oldCount of them before, newCount after). Every
 * line outside is the same in both texts, so everything else in the data is too.
 */
export interface Region {
  readonly path: DataPath;
  readonly col: number;
  readonly start: number;
  readonly oldEnd: number;
  readonly newEnd: number;
  readonly index: number;
  readonly oldCount: number;
  readonly newCount: number;
}

/** Thrown where the indentation does not say for sure; the caller reads the text in full. */
export class NotSure extends Error {}

/** The changed lines: [start, oldEnd) of the old became [start, newEnd) of the new. */
export interface Changed {
  readonly start: number;
  readonly oldEnd: number;
  readonly newEnd: number;
}

export function changedLines(before: readonly string[], after: readonly string[]): Changed {
  const most = Math.min(before.length, after.length);
  let start = 0;
  while (start < most && before[start] === after[start]) start++;
  let tail = 0;
  while (tail < most - start && before[before.length - 1 - tail] === after[after.length - 1 - tail])
    tail++;
  return { start, oldEnd: before.length - tail, newEnd: after.length - tail };
}

const isDashAt = (o: Outline, i: number, col: number) => {
  if (i >= o.lines.length) return false;
  const s = o.shape(i);
  return typeof s !== "string" && s[0]?.kind === "dash" && s[0].col === col;
};

/**
 * The region of whole sequence entries that holds every changed line, in the innermost block
 * sequence that does; NotSure when there is none (a change of a top-level key, of `settings`,
 * across sequences) or when the outline cannot tell. `known`: a region found in a text whose
 * lines above its start are `before`'s, which spares walking up to the sequence's key again.
 */
export function changedRegion(
  before: Outline,
  after: Outline,
  { start, oldEnd, newEnd }: Changed = changedLines(before.lines, after.lines),
  known?: Region,
): Region | undefined {
  if (start === oldEnd && start === newEnd) return undefined;
  // The leftmost node any changed line starts, in either text.
  let least = Number.POSITIVE_INFINITY;
  const lows: { o: Outline; from: number; to: number }[] = [
    { o: before, from: start, to: oldEnd },
    { o: after, from: start, to: newEnd },
  ];
  for (const { o, from, to } of lows)
    for (let i = from; i < to; i++) {
      const c = o.firstCol(i);
      if (c !== undefined) least = Math.min(least, c);
    }
  // Only blank lines changed (comments): the data is the same.
  if (least === Number.POSITIVE_INFINITY) return undefined;
  const col = sequenceColumn(before, start, least, lows);
  // The first entry: the change's first line when it opens an entry (or ends the sequence) in
  // both texts; else the nearest dash in that column above it (the lines above are the same).
  const opens = (o: Outline) => {
    if (start >= o.lines.length) return true;
    const c = o.firstCol(start);
    return c !== undefined && c <= col;
  };
  let first = start;
  const dashed = isDashAt(before, start, col) || isDashAt(after, start, col);
  if (!(opens(before) && opens(after) && dashed)) {
    first = start - 1;
    for (; first >= 0; first--) {
      const c = before.firstCol(first);
      if (c === undefined || c > col) continue;
      if (c === col && isDashAt(before, first, col)) break;
      throw new NotSure("the change starts outside a sequence entry");
    }
    if (first < 0) throw new NotSure("no sequence above the change");
  }
  // The entries end at the first line of the common tail that is not inside one.
  let tail = 0;
  const common = before.lines.length - oldEnd;
  for (; tail < common; tail++) {
    const c = before.firstCol(oldEnd + tail);
    if (c !== undefined && c <= col) break;
  }
  const oldStop = oldEnd + tail;
  const newStop = newEnd + tail;
  const { path, index } =
    (known && countedOn(before, known, first, col)) ?? sequenceOf(before, first, col);
  const count = (o: Outline, to: number) => {
    let n = 0;
    for (let i = first; i < to; i++) if (isDashAt(o, i, col)) n++;
    return n;
  };
  return {
    path,
    col,
    start: first,
    oldEnd: oldStop,
    newEnd: newStop,
    index,
    oldCount: count(before, oldStop),
    newCount: count(after, newStop),
  };
}

/**
 * The column of the innermost block sequence whose entries hold every changed line: every
 * changed line starts right of it, or is one of its dashes.
 */
function sequenceColumn(
  before: Outline,
  start: number,
  least: number,
  lows: readonly { o: Outline; from: number; to: number }[],
): number {
  const fits = lows.every(({ o, from, to }) => {
    for (let i = from; i < to; i++) {
      const c = o.firstCol(i);
      if (c !== undefined && (c < least || (c === least && !isDashAt(o, i, least)))) return false;
    }
    return true;
  });
  if (fits) return least;
  // A changed line at \`least\` is a key: the sequence is the nearest one holding its mapping,
  // found through the lines above (the same in both texts), each ancestor left of the last.
  let want = least;
  for (let i = start - 1; i >= 0; i--) {
    const s = before.shape(i);
    if (s === "unsure") throw new NotSure("unsure line");
    if (s === "blank") continue;
    const first = s[0] as Token;
    if (first.col >= want) continue;
    if (first.kind === "dash") return first.col;
    want = first.col;
  }
  throw new NotSure("no block sequence holds the whole change");
}

/** The sequence whose entry starts with the dash in column `col` of line `line`, and its index. */
function sequenceOf(o: Outline, line: number, col: number): { path: DataPath; index: number } {
  let index = 0;
  for (let i = line - 1; i >= 0; i--) {
    const s = o.shape(i);
    if (s === "blank") continue;
    if (s === "unsure") throw new NotSure("unsure line");
    const first = s[0] as Token;
    if (first.col > col) continue;
    if (first.kind === "dash" && first.col === col) {
      index++;
      continue;
    }
    const parent = s[s.length - 1] as Token;
    if (parent.kind !== "key" || !parent.empty || parent.col > col)
      throw new NotSure("a sequence without a key above it");
    return { path: [...mappingOf(o, i, parent.col), parent.key], index };
  }
  throw new NotSure("a sequence at the top");
}

/**
 * What sequenceOf finds for the dash in column `col` of line `line`, counted on from `known`
 * (the same lines above its start): every line from there down to `line` must be in the same
 * sequence. Undefined where one is not; sequenceOf walks the whole way up then. A hub's member
 * changed again is thus not a walk over the thousands of members above it.
 */
function countedOn(
  o: Outline,
  known: Region,
  line: number,
  col: number,
): { path: DataPath; index: number } | undefined {
  if (known.col !== col || known.start > line) return undefined;
  let index = known.index;
  for (let i = known.start; i < line; i++) {
    const s = o.shape(i);
    if (s === "blank") continue;
    if (s === "unsure") return undefined;
    const first = s[0] as Token;
    if (first.col > col) continue;
    if (first.kind !== "dash" || first.col !== col) return undefined;
    index++;
  }
  return { path: known.path, index };
}

/** The path of the mapping whose key in column `col` is on line `line`. */
function mappingOf(o: Outline, line: number, col: number): DataPath {
  const own = o.shape(line);
  if (typeof own !== "string" && own[0]?.kind === "dash" && own[1]?.col === col) {
    const { path, index } = sequenceOf(o, line, own[0].col);
    return [...path, index];
  }
  for (let i = line - 1; i >= 0; i--) {
    const s = o.shape(i);
    if (s === "blank") continue;
    if (s === "unsure") throw new NotSure("unsure line");
    const first = s[0] as Token;
    // Deeper lines, sibling keys, and a sibling's sequence written at the keys' own column.
    if (first.col > col || (first.col === col && (first.kind === "key" || s.length === 1)))
      continue;
    if (first.kind === "dash" && s[1]?.col === col) {
      const { path, index } = sequenceOf(o, i, first.col);
      return [...path, index];
    }
    const parent = s[s.length - 1] as Token;
    if (parent.kind !== "key" || !parent.empty || parent.col >= col)
      throw new NotSure("a mapping without a key above it");
    return [...mappingOf(o, i, parent.col), parent.key];
  }
  if (col === 0) return [];
  throw new NotSure("an indented mapping at the top");
}
