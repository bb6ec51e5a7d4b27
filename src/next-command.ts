/**
 * The netpol command an operator should run next, as the core knows it: the verb, and what
 * only the core knows (a policy file, a site). Where that command must run — the namespace, the
 * state directory, the key directory — comes from how the operator named the target, so a hint
 * run as printed finds what the command that printed it found.
 */
export interface NextCommand {
  readonly verb: "apply" | "plan" | "confirm" | "revert" | "recover" | "status" | "down";
  readonly args?: readonly string[];
}

/** How the target was named on the command line: the options every hint repeats. */
export interface Naming {
  readonly netns?: string | undefined;
  readonly stateDir?: string | undefined;
  readonly keyDir?: string | undefined;
}

/** Verbs that read key files, and so repeat `--key-dir`: with a policy file, they read it. */
const READS_KEYS = new Set<NextCommand["verb"]>(["apply", "plan", "confirm"]);

const shellWord = (word: string) =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;

/** The one spelling of a hint: `netpol VERB ARGS --netns NS --state-dir DIR --key-dir DIR`. */
export function commandLine(next: NextCommand, naming: Naming): string {
  const args = next.args ?? [];
  const keyDir = naming.keyDir && READS_KEYS.has(next.verb) && args.length > 0;
  return [
    "netpol",
    next.verb,
    ...args,
    ...(naming.netns ? ["--netns", naming.netns] : []),
    ...(naming.stateDir ? ["--state-dir", naming.stateDir] : []),
    ...(keyDir && naming.keyDir ? ["--key-dir", naming.keyDir] : []),
  ]
    .map(shellWord)
    .join(" ");
}
