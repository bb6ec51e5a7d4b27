/** One problem in a policy, located by its path in the document (e.g. sites.home.networks[1].cidr). */
export interface Diagnostic {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Where a diagnostic points, and how checks hand one over. */
export type Path = (string | number)[];
export type Report = (d: Diagnostic) => void;

/**
 * Reports a second `kind` of the same name among `seen` at `path`.name; the name counts as
 * seen afterwards either way. The path may be given as a function, called only for a problem.
 */
export function checkUnique(
  seen: Set<string>,
  kind: string,
  name: string,
  path: Path | (() => Path),
  report: Report,
): void {
  if (seen.has(name)) {
    const at = typeof path === "function" ? path() : path;
    report({ path: [...at, "name"], message: `${kind} ${name} is declared twice; rename one` });
  }
  seen.add(name);
}

/** A diagnostic placed in its file, ready to print as `file:line:col path: message`. */
export interface LocatedDiagnostic extends Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export function formatPath(path: readonly (string | number)[]): string {
  return path
    .map((part, i) => {
      if (typeof part === "number") return `[${part}]`;
      const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(part);
      if (!plain) return `[${JSON.stringify(part)}]`;
      return i === 0 ? part : `.${part}`;
    })
    .join("");
}

export function formatDiagnostic(d: LocatedDiagnostic): string {
  const where = d.path.length > 0 ? ` ${formatPath(d.path)}:` : "";
  return `${d.file}:${d.line}:${d.col}${where} ${d.message}`;
}
