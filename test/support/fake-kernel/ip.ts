import type { Family } from "../../../src/net/cidr.js";
import {
  addressCommand,
  type KernelFeatures,
  linkCommand,
  showLinks,
  tuntapCommand,
} from "./links.js";
import { routeCommand, ruleCommand, showRoutes, showRules } from "./routing.js";
import { type KernelState, malformed, Refused, type ToolResult } from "./state.js";
import { matches, splitArgs } from "./words.js";

interface IpOptions {
  family: Family | undefined;
  json: boolean;
  numeric: boolean;
  details: boolean;
  force: boolean;
  batch: boolean;
}

function readOptions(args: readonly string[]): { options: IpOptions; rest: string[] } {
  const options: IpOptions = {
    family: undefined,
    json: false,
    numeric: false,
    details: false,
    force: false,
    batch: false,
  };
  let i = 0;
  for (; i < args.length && (args[i] as string).startsWith("-"); i++) {
    const a = args[i] as string;
    if (a === "-4" || a === "-6") options.family = a === "-4" ? 4 : 6;
    else if (a === "-j" || a === "-json") options.json = true;
    else if (a === "-N" || a === "-numeric") options.numeric = true;
    else if (a === "-d" || a === "-details") options.details = true;
    else if (a === "-force") options.force = true;
    else if (a === "-batch") {
      if (args[++i] !== "-") throw malformed("fake kernel: ip -batch reads stdin only");
      options.batch = true;
    } else throw malformed(`Option "${a}" is unknown, try "ip -help".`);
  }
  return { options, rest: args.slice(i) };
}

/** `ip OBJECT show|list`: a line that only prints, and so needs no copy of the state. */
function isShow(args: readonly string[]): boolean {
  const verb = args[1] ?? "show";
  return matches(verb, "show") || matches(verb, "list") || verb === "lst";
}

/**
 * One ip(8) command line against the state. A command either changes the state whole or
 * throws and changes nothing: `run` hands it a copy and keeps the copy only on success.
 */
function command(
  state: KernelState,
  features: KernelFeatures,
  options: IpOptions,
  args: readonly string[],
): unknown[] | undefined {
  const [object = "", verb = "show", ...rest] = args;
  const show = isShow(args);
  const { family, numeric, details } = options;
  if (show && !options.json)
    throw malformed("fake kernel: only JSON output is emulated (pass -json)");
  if (matches(object, "link"))
    return show
      ? showLinks(state, rest, { details, numeric, withAddresses: false })
      : void linkCommand(state, features, verb, rest);
  if (matches(object, "address"))
    return show
      ? showLinks(state, rest, { details, numeric, withAddresses: true })
      : void addressCommand(state, family, verb, rest);
  if (matches(object, "route")) {
    if (show) return showRoutes(state, family, rest, numeric, details);
    return void routeCommand(state, family, verb, rest);
  }
  if (matches(object, "rule"))
    return show
      ? showRules(state, family ?? 4, numeric, details)
      : void ruleCommand(state, family, verb, rest);
  if (object === "tuntap") return void tuntapCommand(state, verb, rest);
  throw malformed(`Object "${object}" is unknown, try "ip help".`);
}

/**
 * `ip [options] OBJECT VERB ...` or `ip [options] -batch -`. A batch stops at its first
 * failing line (or, with -force, goes on) and says which line failed, as iproute2 does.
 */
export function ip(
  state: { current: KernelState; clone(): KernelState },
  features: KernelFeatures,
  args: readonly string[],
  input: string,
): ToolResult {
  let options: IpOptions;
  let rest: string[];
  try {
    ({ options, rest } = readOptions(args));
  } catch (err) {
    if (err instanceof Refused)
      return { stdout: "", stderr: `${err.message}\n`, exitCode: err.exitCode };
    throw err;
  }
  const lines = options.batch ? input.split("\n") : [rest.join(" ")];
  let stdout = "";
  let stderr = "";
  let failed: number | undefined;
  for (const [n, line] of lines.entries()) {
    const words = options.batch ? splitArgs(line) : rest;
    if (words.length === 0) continue;
    // A show changes nothing: it reads the state itself, so the state object stays the same one
    // unless a line changed it (what the kernel's monitors compare by).
    const work = isShow(words) ? state.current : state.clone();
    try {
      const out = command(work, features, options, words);
      state.current = work;
      if (out !== undefined) stdout += `${JSON.stringify(out)}\n`;
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      stderr += `${err.message}\n`;
      // A malformed line makes iproute2 exit on the spot (exit(-1)), batch or not, -force or not.
      if (!options.batch || err.fatal) return { stdout, stderr, exitCode: err.exitCode };
      stderr += `Command failed -:${n + 1}\n`;
      failed = 1;
      if (!options.force) break;
    }
  }
  return { stdout, stderr, exitCode: failed ?? 0 };
}
