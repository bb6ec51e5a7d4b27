/** Walking Caddy's JSON config, whose shape is the user's: every level is checked, never assumed. */

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON with keys sorted, as Caddy hands a config back: equal configs compare equal. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

/** The object under `key`, attached to `parent` if absent: dropEmpty removes it again if unused. */
export function child(parent: Obj, key: string): Obj {
  const value = parent[key];
  if (isObj(value)) return value;
  const made: Obj = {};
  parent[key] = made;
  return made;
}

/** Deletes `key` from `parent` when it holds an empty object or list. */
export function dropEmpty(parent: Obj, key: string): void {
  const value = parent[key];
  if (
    (Array.isArray(value) && value.length === 0) ||
    (isObj(value) && Object.keys(value).length === 0)
  )
    delete parent[key];
}
