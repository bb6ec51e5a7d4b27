import type { Runner } from "./runner.js";

/** Current values of the given keys; keys the kernel does not have (yet) are left out. */
export async function readSysctls(
  runner: Runner,
  keys: readonly string[],
): Promise<Map<string, string>> {
  if (keys.length === 0) return new Map();
  const { stdout } = await runner.run("sysctl", ["-e", ...keys], { step: "reading sysctls" });
  const values = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const match = /^(\S+) = (.*)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) values.set(match[1], match[2].trim());
  }
  return values;
}

export async function writeSysctls(
  runner: Runner,
  values: readonly (readonly [string, string])[],
  step: string,
) {
  if (values.length === 0) return;
  await runner.run("sysctl", ["-q", "-w", ...values.map(([k, v]) => `${k}=${v}`)], { step });
}
