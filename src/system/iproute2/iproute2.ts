import type { AddressSpec, RouteSpec, RuleSpec } from "../../compile/desired.js";
import type { Family } from "../../net/cidr.js";
import type { Runner } from "../runner.js";
import {
  type LiveLink,
  type Owned,
  parseAddresses,
  parseLinks,
  parseRoutes,
  parseRules,
  splitBatchJson,
} from "./parse.js";

export interface IpLive {
  readonly links: readonly LiveLink[];
  readonly addresses: readonly AddressSpec[];
  readonly routes: Owned<RouteSpec>;
  readonly rules: Owned<RuleSpec>;
}

async function readFamily(runner: Runner, family: Family, protocol: number) {
  const { stdout } = await runner.run("ip", ["-N", `-${family}`, "-json", "-batch", "-"], {
    input: "route show table all\nrule show\n",
    step: "reading routes and rules",
  });
  const [routes = [], rules = []] = splitBatchJson(stdout);
  return {
    routes: parseRoutes(routes, family, protocol),
    rules: parseRules(rules, family, protocol),
  };
}

/** Reads links, addresses, routes and rules in three processes at once, however many there are. */
export async function readIp(runner: Runner, protocol: number): Promise<IpLive> {
  const [{ stdout }, v4, v6] = await Promise.all([
    runner.run("ip", ["-d", "-json", "-batch", "-"], {
      input: "link show\naddress show\n",
      step: "reading links and addresses",
    }),
    readFamily(runner, 4, protocol),
    readFamily(runner, 6, protocol),
  ]);
  const [links = [], addresses = []] = splitBatchJson(stdout);
  return {
    links: parseLinks(links),
    addresses: parseAddresses(addresses),
    routes: {
      owned: [...v4.routes.owned, ...v6.routes.owned],
      foreign: [...v4.routes.foreign, ...v6.routes.foreign],
    },
    rules: {
      owned: [...v4.rules.owned, ...v6.rules.owned],
      foreign: [...v4.rules.foreign, ...v6.rules.foreign],
    },
  };
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
