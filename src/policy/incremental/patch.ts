import type { DataPath } from "./region.js";

/**
 * `data` with the array at `path` given `entries` in place of its `count` entries from
 * `index`: new objects along the path only, everything else shared with the old data (which
 * stays as it was: the resident may still hold it).
 */
export function spliced<T>(
  data: T,
  path: DataPath,
  index: number,
  count: number,
  entries: readonly unknown[],
): T {
  const at = (node: unknown, depth: number): unknown => {
    if (depth === path.length) {
      const list = node as readonly unknown[];
      return [...list.slice(0, index), ...entries, ...list.slice(index + count)];
    }
    const step = path[depth] as string | number;
    if (Array.isArray(node)) {
      const copy = [...node];
      copy[step as number] = at(node[step as number], depth + 1);
      return copy;
    }
    const record = node as Record<string, unknown>;
    return { ...record, [step]: at(record[step], depth + 1) };
  };
  return at(data, 0) as T;
}
