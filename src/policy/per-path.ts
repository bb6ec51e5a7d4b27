import type { Path, Report } from "./diagnostic.js";

/**
 * A per-path setting lined up with an egress's paths: one list serves every path; a list per
 * path (keyed by the names written in `via`) must name exactly those paths. `what` finishes
 * "name … X too", e.g. "the resolvers reached through".
 */
export function perPath<T>(
  via: readonly string[],
  value: readonly T[] | Readonly<Record<string, readonly T[]>>,
  at: Path,
  what: string,
  report: Report,
  /** What a path the list leaves out falls back to (a provider's own resolvers), if anything. */
  fallback: (name: string) => readonly T[] | undefined = () => undefined,
): (readonly T[])[] | undefined {
  if (isList(value)) return via.map(() => value);
  for (const name of Object.keys(value)) {
    if (!via.includes(name))
      report({
        path: [...at, name],
        message: `${name} is not a path of this egress; name one of: ${via.join(", ")}`,
      });
  }
  const lists = via.map((name): readonly T[] => value[name] ?? fallback(name) ?? []);
  const missing = via.filter((_, i) => lists[i]?.length === 0);
  if (missing.length > 0) {
    report({
      path: at,
      message: `name ${what} ${missing.join(", ")} too (or one list for the whole chain)`,
    });
    return undefined;
  }
  return lists;
}

function isList<T>(v: readonly T[] | Readonly<Record<string, readonly T[]>>): v is readonly T[] {
  return Array.isArray(v);
}
