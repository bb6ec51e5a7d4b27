import type { FakeNftTable, KernelState, ToolResult } from "./state.js";

/**
 * nft(8) as far as netpol uses it: `nft -f -` files that declare, delete and fill whole tables
 * (one transaction: all or nothing), `nft list tables|table|ruleset` (a table's listing also
 * followed by `; list ruleset`) and `nft -j list`. Rules are kept as text: the fake checks a
 * file's structure, not nft's rule grammar, and lists tables back in nft's layout (tabs,
 * counters with their packets and bytes).
 */

interface Statement {
  readonly text: string;
  /** 1-based line where it starts, for error messages. */
  readonly line: number;
  readonly body: string | undefined;
}

class NftError extends Error {}

/** Splits text at top-level newlines and semicolons, keeping `{ … }` blocks whole. */
function statements(text: string, firstLine = 1): Statement[] {
  const out: Statement[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  let line = firstLine;
  let startLine = line;
  let open = -1;
  const flush = (end: number) => {
    const head = text.slice(start, open >= 0 ? open : end).trim();
    const body = open >= 0 ? text.slice(open + 1, end - 1) : undefined;
    if (head !== "") out.push({ text: head, line: startLine, body });
    open = -1;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    if (quoted) continue;
    if (c === "#") {
      const nl = text.indexOf("\n", i);
      const end = nl < 0 ? text.length : nl;
      if (depth === 0 && text.slice(start, i).trim() === "") start = end;
      i = end - 1;
    } else if (c === "{") {
      if (depth === 0) open = i;
      depth++;
    } else if (c === "}") {
      depth--;
      if (depth < 0)
        throw new NftError(`/dev/stdin:${line}:1-1: Error: syntax error, unexpected '}'`);
      if (depth === 0) {
        flush(i + 1);
        start = i + 1;
        startLine = line;
      }
    } else if ((c === "\n" || c === ";") && depth === 0) {
      flush(i);
      start = i + 1;
      startLine = c === "\n" ? line + 1 : line;
    }
    if (c === "\n") line++;
  }
  if (depth > 0)
    throw new NftError(`/dev/stdin:${line}:1-1: Error: syntax error, unexpected end of file`);
  flush(text.length);
  return out;
}

function missing(s: Statement, name: string): NftError {
  const col = s.text.lastIndexOf(name) + 1;
  return new NftError(
    `/dev/stdin:${s.line}:${col}-${col + name.length - 1}: Error: Could not process rule: No such file or directory\n${s.text}\n${" ".repeat(col - 1)}${"^".repeat(name.length)}`,
  );
}

function fillTable(table: FakeNftTable, body: string, line: number): void {
  for (const s of statements(body, line)) {
    const [kind = "", name = ""] = s.text.split(/\s+/);
    if (kind === "comment") {
      table.comment = s.text.slice("comment".length).trim();
    } else if (kind === "chain" || kind === "set" || kind === "map") {
      if (s.body === undefined)
        throw new NftError(`/dev/stdin:${s.line}:1-1: Error: syntax error, ${kind} without a body`);
      const collapse = (text: string) => text.trim().replace(/\s+/g, " ");
      // Statements end at a newline or ';'; an element list `{ … }` stays on one line.
      const lines = statements(s.body, s.line).map((st) =>
        st.body === undefined ? collapse(st.text) : `${collapse(st.text)} { ${collapse(st.body)} }`,
      );
      // A base chain's hook and policy are one line in nft's listing.
      if (kind === "chain" && lines[0]?.startsWith("type ")) {
        const policy = lines[1]?.startsWith("policy ") ? lines.splice(1, 1)[0] : "policy accept";
        lines[0] = `${lines[0]}; ${policy};`;
      }
      const existing = table.objects.find((o) => o.kind === kind && o.name === name);
      if (existing) existing.lines.push(...lines);
      else table.objects.push({ kind, name, lines });
    } else {
      throw new NftError(
        `/dev/stdin:${s.line}:1-${kind.length}: Error: syntax error, unexpected ${kind}`,
      );
    }
  }
}

/**
 * `add element` and `delete element` of a map or set (a path switch of DNS replaces the one
 * element of its map): a map element is deleted by its key.
 */
function changeElements(
  tables: FakeNftTable[],
  s: Statement,
  verb: "add" | "delete",
  family: string,
  table: string,
  set: string,
): void {
  const t = tables.find((x) => x.family === family && x.name === table);
  const o = t?.objects.find((x) => (x.kind === "map" || x.kind === "set") && x.name === set);
  if (!o) throw missing(s, set);
  const split = (text: string) =>
    text
      .split(",")
      .map((e) => e.trim().replace(/\s+/g, " "))
      .filter(Boolean);
  const given = split(s.body ?? "");
  const at = o.lines.findIndex((l) => l.startsWith("elements = {"));
  const now = at >= 0 ? split(/\{(.*)\}/.exec(o.lines[at] ?? "")?.[1] ?? "") : [];
  const key = (e: string) => e.split(" : ")[0];
  const keys = new Set(given.map(key));
  if (verb === "delete" && now.filter((e) => keys.has(key(e))).length < keys.size)
    throw missing(s, set);
  const next = verb === "add" ? [...now, ...given] : now.filter((e) => !keys.has(key(e)));
  const line = `elements = { ${next.join(", ")} }`;
  if (at >= 0) o.lines[at] = line;
  else o.lines.push(line);
}

/** Applies a file to a copy of the tables; the caller keeps the copy only if all went well. */
function load(tables: FakeNftTable[], text: string): void {
  for (const s of statements(text)) {
    const words = s.text.split(/\s+/);
    const [verb, what, family = "", name = ""] = words[0] === "table" ? ["add", ...words] : words;
    if (what === "element" && (verb === "add" || verb === "delete")) {
      changeElements(tables, s, verb, family, name, words[4] ?? "");
      continue;
    }
    if (what !== "table")
      throw new NftError(
        `/dev/stdin:${s.line}:1-1: Error: fake kernel: \`${s.text}\` is not emulated`,
      );
    const at = tables.findIndex((t) => t.family === family && t.name === name);
    if (verb === "add") {
      const table = at >= 0 ? (tables[at] as FakeNftTable) : { family, name, objects: [] };
      if (at < 0) tables.push(table);
      if (s.body !== undefined) fillTable(table, s.body, s.line);
    } else if (verb === "delete" || verb === "flush") {
      if (at < 0) throw missing(s, name);
      if (verb === "delete") tables.splice(at, 1);
      else (tables[at] as FakeNftTable).objects.length = 0;
    } else {
      throw new NftError(
        `/dev/stdin:${s.line}:1-1: Error: fake kernel: \`${s.text}\` is not emulated`,
      );
    }
  }
}

/** nft shows a counter with what it counted. */
const listed = (rule: string) =>
  rule.replace(/\bcounter\b(?! packets)/g, "counter packets 0 bytes 0");

/** `terse`: as `nft -t`, without the sets' elements (one line each here). */
export function listTable(t: FakeNftTable, terse = false): string {
  const objects = t.objects.map((o) => {
    const lines = terse ? o.lines.filter((l) => !l.startsWith("elements = ")) : o.lines;
    return [`\t${o.kind} ${o.name} {`, ...lines.map((l) => `\t\t${listed(l)}`), "\t}"].join("\n");
  });
  const comment = t.comment !== undefined ? [`\tcomment ${t.comment}`] : [];
  return [`table ${t.family} ${t.name} {`, ...comment, objects.join("\n\n"), "}"]
    .filter((l) => l !== "")
    .join("\n");
}

/** `nft -j list ruleset|table`, or `list chains` (`chainsOnly`): the chains without their rules. */
function listJson(tables: readonly FakeNftTable[], chainsOnly = false): string {
  let handle = 0;
  const items: unknown[] = [{ metainfo: { version: "1.0.6", json_schema_version: 1 } }];
  for (const t of tables) {
    if (!chainsOnly) items.push({ table: { family: t.family, name: t.name, handle: ++handle } });
    for (const o of t.objects) {
      const { family, name: table } = t;
      if (chainsOnly && o.kind !== "chain") continue;
      if (o.kind !== "chain") {
        items.push({ [o.kind]: { family, table, name: o.name, handle: ++handle } });
        continue;
      }
      const head = /type (\w+) hook (\w+) priority ([\w-]+); policy (\w+);/.exec(o.lines[0] ?? "");
      items.push({
        chain: {
          family,
          table,
          name: o.name,
          handle: ++handle,
          ...(head ? { type: head[1], hook: head[2], prio: head[3], policy: head[4] } : {}),
        },
      });
      if (chainsOnly) continue;
      for (const rule of o.lines.slice(head ? 1 : 0)) {
        const comment = /comment "([^"]*)"$/.exec(rule)?.[1];
        items.push({
          rule: {
            family,
            table,
            chain: o.name,
            handle: ++handle,
            ...(comment !== undefined ? { comment } : {}),
            expr: /\bcounter\b/.test(rule) ? [{ counter: { packets: 0, bytes: 0 } }] : [],
          },
        });
      }
    }
  }
  return JSON.stringify({ nftables: items });
}

export function nft(state: KernelState, args: readonly string[], input: string): ToolResult {
  const flags = args.slice(
    0,
    args.findIndex((a) => !/^(-j|--json|-t)$/.test(a)),
  );
  const json = flags.includes("-j") || flags.includes("--json");
  const rest = args.slice(flags.length);
  const ok = (stdout: string): ToolResult => ({ stdout, stderr: "", exitCode: 0 });
  const fail = (stderr: string): ToolResult => ({ stdout: "", stderr: `${stderr}\n`, exitCode: 1 });
  if (rest[0] === "-f") {
    if (rest[1] !== "-") return fail("fake kernel: nft -f reads stdin only");
    const copy = structuredClone(state.nft);
    try {
      load(copy, input);
    } catch (err) {
      if (err instanceof NftError) return fail(err.message);
      throw err;
    }
    state.nft = copy;
    return ok("");
  }
  // `list table F N ; list ruleset`: nft 1.0.6 fetches once for both, with the table's filter,
  // so the ruleset it lists is that table alone (src/system/nftables.ts, readNftSkeleton).
  const twice = rest.indexOf(";");
  if (twice >= 0 && rest[1] === "table" && rest.slice(twice + 1).join(" ") === "list ruleset") {
    const table = nft(state, [...flags, ...rest.slice(0, twice)], input);
    return table.exitCode === 0 ? ok(table.stdout.repeat(2)) : table;
  }
  if (rest[0] === "list") {
    if (rest[1] === "tables")
      return ok(state.nft.map((t) => `table ${t.family} ${t.name}\n`).join(""));
    if (rest[1] === "chains" && json) return ok(listJson(state.nft, true));
    if (rest[1] === "ruleset")
      return ok(
        json
          ? listJson(state.nft)
          : state.nft.map((t) => `${listTable(t, flags.includes("-t"))}\n`).join(""),
      );
    if (rest[1] === "table" && rest.length === 4) {
      const t = state.nft.find((x) => x.family === rest[2] && x.name === rest[3]);
      if (!t) {
        const what = `list table ${rest[2]} ${rest[3]}`;
        return fail(
          `Error: No such file or directory\n${what}\n${" ".repeat(what.length - (rest[3] as string).length)}${"^".repeat((rest[3] as string).length)}`,
        );
      }
      return ok(json ? listJson([t]) : `${listTable(t, flags.includes("-t"))}\n`);
    }
  }
  return fail(`fake kernel: \`nft ${args.join(" ")}\` is not emulated`);
}
