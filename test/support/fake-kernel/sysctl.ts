import type { KernelState, ToolResult } from "./state.js";

/**
 * The sysctls a fresh namespace has that netpol reads or writes, with a fresh namespace's
 * values (read from one on the lab). Per-device keys come and go with their device.
 */
export const GLOBAL_SYSCTLS: readonly (readonly [string, string])[] = [
  ["net.ipv4.ip_forward", "0"],
  ["net.ipv4.conf.all.forwarding", "0"],
  ["net.ipv4.conf.default.forwarding", "0"],
  ["net.ipv4.conf.all.rp_filter", "0"],
  ["net.ipv4.conf.default.rp_filter", "0"],
  ["net.ipv4.conf.all.src_valid_mark", "0"],
  ["net.ipv6.conf.all.forwarding", "0"],
  ["net.ipv6.conf.default.forwarding", "0"],
  ["net.ipv6.conf.all.accept_ra", "1"],
  ["net.ipv6.conf.default.accept_ra", "1"],
];

const PER_DEVICE: readonly (readonly [string, string])[] = [
  ["net.ipv4.conf.DEV.forwarding", "net.ipv4.conf.default.forwarding"],
  ["net.ipv4.conf.DEV.rp_filter", "net.ipv4.conf.default.rp_filter"],
  ["net.ipv6.conf.DEV.forwarding", "net.ipv6.conf.default.forwarding"],
  ["net.ipv6.conf.DEV.accept_ra", "net.ipv6.conf.default.accept_ra"],
];

/** sysctl writes a '.' in a device name as '/'. */
const keyOf = (pattern: string, device: string) =>
  pattern.replace("DEV", device.replaceAll(".", "/"));

/** A new device's keys start from the `default` ones, as in the kernel. */
export function deviceSysctls(state: KernelState, device: string): void {
  for (const [pattern, from] of PER_DEVICE)
    state.sysctls.set(keyOf(pattern, device), state.sysctls.get(from) ?? "0");
}

export function dropDeviceSysctls(state: KernelState, device: string): void {
  for (const [pattern] of PER_DEVICE) state.sysctls.delete(keyOf(pattern, device));
}

/** ip_forward is the same switch as conf.all.forwarding, and sets every device's too. */
function write(state: KernelState, key: string, value: string): void {
  state.sysctls.set(key, value);
  for (const family of ["ipv4", "ipv6"]) {
    const all =
      family === "ipv4"
        ? ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"]
        : ["net.ipv6.conf.all.forwarding"];
    if (!all.includes(key)) continue;
    for (const k of [...all, `net.${family}.conf.default.forwarding`]) state.sysctls.set(k, value);
    for (const k of state.sysctls.keys())
      if (new RegExp(`^net\\.${family}\\.conf\\.[^.]+\\.forwarding$`).test(k))
        state.sysctls.set(k, value);
  }
}

const cannotStat = (key: string) =>
  `sysctl: cannot stat /proc/sys/${key.replaceAll(".", "/")}: No such file or directory\n`;

/** `sysctl [-e] [-q] [-w] key[=value]...` as procps prints it. */
export function sysctl(state: KernelState, args: readonly string[]): ToolResult {
  const flags = new Set(args.filter((a) => a.startsWith("-")));
  const quiet = flags.has("-q");
  const ignoreMissing = flags.has("-e");
  let stdout = "";
  let stderr = "";
  let exitCode = 0;
  for (const arg of args.filter((a) => !a.startsWith("-"))) {
    const eq = arg.indexOf("=");
    const key = eq < 0 ? arg : arg.slice(0, eq);
    if (!state.sysctls.has(key)) {
      if (!ignoreMissing) {
        stderr += cannotStat(key);
        exitCode = 1;
      }
      continue;
    }
    if (eq >= 0 || flags.has("-w")) {
      const value = arg.slice(eq + 1).trim();
      if (!/^-?\d+$/.test(value)) {
        stderr += `sysctl: setting key "${key}": Invalid argument\n`;
        exitCode = 1;
        continue;
      }
      write(state, key, value);
      if (!quiet) stdout += `${key} = ${value}\n`;
    } else {
      stdout += `${key} = ${state.sysctls.get(key)}\n`;
    }
  }
  return { stdout, stderr, exitCode };
}
