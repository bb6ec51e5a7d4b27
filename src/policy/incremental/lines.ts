/**
 * One line of a policy's YAML as the incremental reader sees it: where its nodes start, by
 * column. Only lines whose structure the indentation tells alone are "plain": a key with a
 * value closed on the line (or none, when a block follows), a sequence entry holding such a
 * key or a closed value, a blank or a comment. Anything else (a block scalar, a flow
 * collection or quoted string going on past the line, an anchor, alias or tag, a complex or
 * quoted key, a document marker, a tab) is "unsure", and a text holding one is read in full.
 */
export type Token =
  | { readonly kind: "dash"; readonly col: number }
  | { readonly kind: "key"; readonly col: number; readonly key: string; readonly empty: boolean };

/** Nothing (blank or comment), the line's nodes, or unsure. */
export type LineShape = "blank" | "unsure" | readonly Token[];

const BLANK = /^ *(#.*)?$/;
const KEY = /^([A-Za-z0-9_][A-Za-z0-9_.-]*):(?: +|$)/;
/** A node's first character that asks for something beyond one closed plain line. */
const OPENERS = new Set(["|", ">", "&", "*", "!", "%", "@", "`", "?"]);

export function lineShape(line: string): LineShape {
  if (BLANK.test(line)) return "blank";
  let col = 0;
  while (line.charCodeAt(col) === 32) col++;
  const tokens: Token[] = [];
  let rest = line.slice(col);
  if (rest === "-" || rest.startsWith("- ")) {
    tokens.push({ kind: "dash", col });
    let after = 1;
    while (rest.charCodeAt(after) === 32) after++;
    col += after;
    rest = rest.slice(after);
    // `- ` alone on its line, or a nested `- - x`: the entry's node starts elsewhere.
    if (rest === "" || rest.startsWith("#") || rest === "-" || rest.startsWith("- "))
      return "unsure";
  }
  const key = KEY.exec(rest);
  if (key) {
    const name = key[1] as string;
    const value = rest.slice(key[0].length);
    if (!closedValue(value)) return "unsure";
    const empty = value === "" || value.startsWith("#");
    tokens.push({ kind: "key", col, key: name, empty });
    return tokens;
  }
  // A value alone on a line is a sequence entry's; anything else continues a node above.
  if (tokens.length === 0 || !closedValue(rest)) return "unsure";
  return tokens;
}

/**
 * Whether a value ends on its line and names no anchor, alias or tag: quotes closed, flow
 * brackets balanced, none of the characters that open a block scalar or a reference outside
 * quotes (a value such as a URL holding `&` is refused too: the full reader takes it).
 */
function closedValue(value: string): boolean {
  if (value === "") return true;
  if (OPENERS.has(value[0] as string)) return false;
  let depth = 0;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quote === '"') {
      if (c === "\\") i++;
      else if (c === '"') quote = undefined;
      continue;
    }
    if (quote === "'") {
      if (c === "'") {
        if (value[i + 1] === "'") i++;
        else quote = undefined;
      }
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      if (--depth < 0) return false;
    } else if (c === "#" && (i === 0 || value[i - 1] === " ")) break;
    else if (c === "&" || c === "*" || c === "!" || c === "|" || c === ">" || c === "\t")
      return false;
  }
  return quote === undefined && depth === 0;
}

/** The lines of a text, each shaped once, as asked. */
export class Outline {
  private readonly shapes: (LineShape | undefined)[];

  constructor(readonly lines: readonly string[]) {
    this.shapes = new Array(lines.length);
  }

  shape(i: number): LineShape {
    let s = this.shapes[i];
    if (s === undefined) {
      s = lineShape(this.lines[i] as string);
      this.shapes[i] = s;
    }
    return s;
  }

  /** The column of the line's first node; undefined for a blank line. */
  firstCol(i: number): number | undefined {
    const s = this.shape(i);
    return s === "blank" ? undefined : s === "unsure" ? -1 : (s[0] as Token).col;
  }

  /** Takes the shapes `before` knows of the lines both texts share (region.ts's `changed`). */
  adopt(
    before: Outline,
    { start, oldEnd, newEnd }: { start: number; oldEnd: number; newEnd: number },
  ): void {
    for (let i = 0; i < start; i++) this.shapes[i] = before.shapes[i];
    const shift = newEnd - oldEnd;
    for (let i = oldEnd; i < before.lines.length; i++) this.shapes[i + shift] = before.shapes[i];
  }

  /** Lines in [from, to) that are unsure. */
  unsureIn(from: number, to: number): number {
    let n = 0;
    for (let i = from; i < to; i++) if (this.shape(i) === "unsure") n++;
    return n;
  }
}
