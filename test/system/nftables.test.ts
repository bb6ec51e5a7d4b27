import { afterAll, beforeAll, expect, it } from "vitest";
import { parseNftListing } from "../../src/plan/nft-table.js";
import { readNftSkeleton, writeNft } from "../../src/system/nftables.js";
import { createRunner, type Runner, withRun } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { fakeNode } from "../support/node.js";

/** netpol's table with an auto-merge set of 2,000 prefixes, between two tables of others. */
const prefixes = Array.from({ length: 2000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/25`);
const RULESET = `table inet aaa {
  set other4 { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }
  chain input { type filter hook input priority 0; policy accept; ip saddr @other4 counter; }
}
table inet netpol {
  set src4 { type ipv4_addr; flags interval; auto-merge; elements = { ${prefixes.join(", ")} } }
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip saddr @src4 meta mark set 0x100 counter
  }
}
table ip zzz {
  chain out { type filter hook output priority 0; policy accept; counter; }
}
`;

/** The skeleton read: the commands it ran, and all nft printed to it. */
const SKELETON_READ = "nft -t list table inet netpol ; list ruleset";

function recording(inner: Runner): { runner: Runner; commands: string[]; printed: string[] } {
  const commands: string[] = [];
  const printed: string[] = [];
  const runner = withRun(inner, async (tool, args, options) => {
    commands.push([tool, ...args].join(" "));
    const result = await inner.run(tool, args, options);
    printed.push(result.stdout);
    return result;
  });
  return { runner, commands, printed };
}

describeLive("netpol's table's skeleton, as an apply reads it back after a write", () => {
  let ns: Netns;
  let read: ReturnType<typeof recording>;
  beforeAll(async () => {
    ns = await createNetns("npnftsk");
    read = recording(createRunner(ns.name));
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it("is one nft run that lists netpol's table alone, without its elements, as `nft -t list table` prints it", async () => {
    await ns.exec(["nft", "-f", "-"], RULESET);
    const table = await ns.exec(["nft", "-t", "list", "table", "inet", "netpol"]);
    const skeleton = await readNftSkeleton(read.runner);
    expect(skeleton).toBe(parseNftListing(table.stdout, false).skeleton);
    expect(skeleton).toContain("ip saddr @src4 meta mark set 0x00000100 counter");
    expect(read.commands).toEqual([SKELETON_READ]);
    // nft fetched neither the elements nor the other tables: it printed neither.
    expect(read.printed.join("")).not.toMatch(/10\.0\.0\.0|table inet aaa|table ip zzz/);
  });

  it("falls back to the table alone when the run with the ruleset fails", async () => {
    const table = await ns.exec(["nft", "-t", "list", "table", "inet", "netpol"]);
    const inner = createRunner(ns.name);
    const noRuleset = withRun(inner, (tool, args, options) =>
      args.includes("ruleset")
        ? Promise.reject(new Error("nft cannot list another table"))
        : inner.run(tool, args, options),
    );
    expect(await readNftSkeleton(noRuleset)).toBe(parseNftListing(table.stdout, false).skeleton);
  });

  it("is undefined when netpol's table is absent", async () => {
    await ns.exec(["nft", "delete", "table", "inet", "netpol"]);
    expect(await readNftSkeleton(read.runner)).toBeUndefined();
  });
});

/** netpol's table with 20,000 elements beside a kube-proxy sized table of 20,000 rules. */
const OWN = Array.from({ length: 20_000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/25`);
const FOREIGN = Array.from(
  { length: 20_000 },
  (_, i) =>
    `add rule ip kube services ip daddr 10.96.${i >> 8}.${i & 255} tcp dport 80 counter accept`,
);

describeLive("the skeleton read beside another tool's big table", () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await createNetns("npnftbig");
    await ns.exec(
      ["nft", "-f", "-"],
      `table ip kube {\n  chain services { type nat hook prerouting priority -100; policy accept; }\n}\n${FOREIGN.join("\n")}\n`,
    );
    await ns.exec(
      ["nft", "-f", "-"],
      `table inet netpol {
  set src4 { type ipv4_addr; flags interval; auto-merge; elements = { ${OWN.join(", ")} } }
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip saddr @src4 meta mark set 0x100 counter
  }
}
`,
    );
  }, 120_000);
  afterAll(async () => {
    await ns?.destroy();
  });

  it("reads netpol's table alone, right, and leaves the other table as it was", async () => {
    const foreign = async () => (await ns.exec(["nft", "list", "table", "ip", "kube"])).stdout;
    const before = await foreign();
    const table = await ns.exec(["nft", "-t", "list", "table", "inet", "netpol"]);
    const read = recording(createRunner(ns.name));
    expect(await readNftSkeleton(read.runner)).toBe(parseNftListing(table.stdout, false).skeleton);
    expect(read.commands).toEqual([SKELETON_READ]);
    const printed = read.printed.join("");
    expect(printed).not.toContain("table ip kube");
    expect(printed).not.toContain("10.0.0.0/25");
    expect(await foreign()).toBe(before);
    expect(before.match(/ dport 80 counter/g)).toHaveLength(20_000);
  });
});

it("loads the table whole where the kernel refuses a change's element commands (its sets were not as read)", async () => {
  const node = fakeNode();
  const runner = node.runner();
  const table = (elements: string) =>
    `table inet netpol {}\ndelete table inet netpol\ntable inet netpol {\n  set src4 {\n    type ipv4_addr; flags interval;\n    elements = { ${elements} }\n  }\n}\n`;
  await writeNft(runner, { text: table("10.0.0.0/24, 10.0.1.0/24") }, "test");
  const spawned = runner.spawned;
  // The element the commands take out is gone already: they change nothing, and the text loads.
  await writeNft(
    runner,
    {
      text: table("10.0.0.0/24, 10.9.0.0/24"),
      elements:
        "delete element inet netpol src4 { 10.0.7.0/24 }\nadd element inet netpol src4 { 10.9.0.0/24 }\n",
    },
    "test",
  );
  expect(runner.spawned - spawned).toBe(2);
  const listed = await node.run("nft", ["list", "table", "inet", "netpol"]);
  expect(listed).toContain("10.9.0.0/24");
  expect(listed).not.toContain("10.0.1.0/24");
});
