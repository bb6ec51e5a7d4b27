import type { Family } from "../../net/cidr.js";
import type { IpLive, LiveLink, Owned } from "../../plan/live.js";
import type { Runner } from "../runner.js";
import {
  parseAddresses,
  parseCatchAll,
  parseLinks,
  parseRoutes,
  parseRules,
  splitBatchJson,
} from "./parse.js";

const ROUTES_AND_RULES = "route show table all\nrule show\n";

/**
 * Reads links, addresses, routes and rules in two processes at once, however many there are.
 * Without a family, `route show table all` lists both (in a batch too), so each process
 * names its own: `ip -4` reads the links (all of them) with IPv4's addresses, routes and
 * rules, `ip -6` the rest.
 */
export async function readIp(
  runner: Runner,
  /** Sorts netpol's routes and rules from the rest; the commands do not need it to start. */
  protocolOf: number | Promise<number>,
): Promise<IpLive> {
  const step = "reading links, addresses, routes and rules";
  const [main, v6, protocol] = await Promise.all([
    runner.run("ip", ["-4", "-d", "-N", "-json", "-batch", "-"], {
      input: `link show\naddress show\n${ROUTES_AND_RULES}`,
      step,
      spool: true,
    }),
    runner.run("ip", ["-6", "-N", "-json", "-batch", "-"], {
      input: `address show\n${ROUTES_AND_RULES}`,
      step,
      spool: true,
    }),
    protocolOf,
  ]);
  const [links = [], addresses4 = [], routes4 = [], rules4 = []] = splitBatchJson(main.stdout);
  const [addresses6 = [], routes6 = [], rules6 = []] = splitBatchJson(v6.stdout);
  const both = <T>(
    parse: (json: unknown[], f: Family, p: number) => Owned<T>,
    four: unknown[],
    six: unknown[],
  ): Owned<T> => {
    const a = parse(four, 4, protocol);
    const b = parse(six, 6, protocol);
    return { owned: [...a.owned, ...b.owned], foreign: [...a.foreign, ...b.foreign] };
  };
  return {
    links: parseLinks(links),
    addresses: [...parseAddresses(addresses4), ...parseAddresses(addresses6)],
    routes: both(parseRoutes, routes4, routes6),
    rules: both(parseRules, rules4, rules6),
    catchAll: [...parseCatchAll(routes4, 4, protocol), ...parseCatchAll(routes6, 6, protocol)],
  };
}

/** The namespace's links alone (`ip -json link show`), for a step that reads nothing else. */
export async function readLinks(runner: Runner, step: string): Promise<LiveLink[]> {
  const read = await runner.run("ip", ["-json", "link", "show"], { step });
  return parseLinks(JSON.parse(read.stdout));
}

/**
 * Runs `ip -batch` lines; IPv6 routes and rules go through `ip -6 -batch`. Empty input runs
 * nothing. `force` goes on past failing lines (for a best-effort rollback); otherwise the
 * batch stops at the first failure, undoing nothing.
 */
export async function runIpBatch(
  runner: Runner,
  lines: readonly string[],
  family: Family | "any",
  step: string,
  force = false,
) {
  if (lines.length === 0) return;
  const args = [...(family === 6 ? ["-6"] : []), ...(force ? ["-force"] : []), "-batch", "-"];
  await runner.run("ip", args, { input: `${lines.join("\n")}\n`, step });
}
