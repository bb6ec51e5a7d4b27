import { createRunner, type Runner } from "../../src/system/runner.js";
import { FakeKernel } from "./fake-kernel/kernel.js";
import { createNetns } from "./netns.js";

/**
 * The namespace a test points netpol at: a real one (root, the lab) or a fake kernel (any
 * user, milliseconds). Scenarios written against this run on both.
 */
export interface TestNode {
  readonly kind: "live" | "fake";
  /** Runs a tool in the namespace by the test's own hand; resolves with stdout, throws on failure. */
  run(tool: string, args: readonly string[], input?: string): Promise<string>;
  /** A fresh Runner for netpol's code, counting its own processes. */
  runner(): Runner;
  destroy(): Promise<void>;
}

export function liveNode(netns: string, destroy = async () => {}): TestNode {
  const hand = createRunner(netns);
  return {
    kind: "live",
    run: async (tool, args, input) =>
      (await hand.run(tool, args, input !== undefined ? { input } : {})).stdout,
    runner: () => createRunner(netns),
    destroy,
  };
}

export function fakeNode(kernel = new FakeKernel()): TestNode & { readonly kernel: FakeKernel } {
  return {
    kind: "fake",
    kernel,
    run: async (tool, args, input) => kernel.must(tool, args, input),
    runner: () => kernel.runner(),
    destroy: async () => {},
  };
}

/** A new empty namespace of the given kind, with lo up. */
export async function newNode(kind: TestNode["kind"], prefix: string): Promise<TestNode> {
  if (kind === "live") {
    const ns = await createNetns(prefix);
    return liveNode(ns.name, () => ns.destroy());
  }
  const node = fakeNode();
  await node.run("ip", ["link", "set", "dev", "lo", "up"]);
  return node;
}

type Json = Record<string, unknown>;

/** `ip -json …` output as objects: one array per command, as many commands as a batch had. */
export async function ipJson(node: TestNode, args: readonly string[]): Promise<Json[]> {
  const out = await node.run("ip", ["-N", "-json", ...args]);
  return out
    .split("\n")
    .filter((l) => l.startsWith("["))
    .flatMap((l) => JSON.parse(l) as Json[]);
}

export async function routes(node: TestNode): Promise<Json[]> {
  return [
    ...(await ipJson(node, ["-4", "route", "show", "table", "all"])),
    ...(await ipJson(node, ["-6", "route", "show", "table", "all"])),
  ];
}

export async function rules(node: TestNode): Promise<Json[]> {
  return [
    ...(await ipJson(node, ["-4", "rule", "show"])),
    ...(await ipJson(node, ["-6", "rule", "show"])),
  ];
}

/** Everything netpol could own in a namespace, read back for before/after comparisons. */
export async function ownedSnapshot(node: TestNode, protocol = "77") {
  const links = await ipJson(node, ["address", "show"]);
  return {
    routes: (await routes(node)).filter((r) => r.protocol === protocol),
    rules: await rules(node),
    addresses: links.flatMap((l) =>
      ((l.addr_info ?? []) as Json[])
        .filter((a) => a.family === "inet" && a.scope === "global")
        .map((a) => `${a.local}/${a.prefixlen} dev ${l.ifname}`),
    ),
    links: links.map((l) => l.ifname as string).sort(),
    nft: await node.run("nft", ["list", "ruleset"]),
  };
}
