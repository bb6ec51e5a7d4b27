import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseListeners } from "../../src/system/sockets.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";
import type { ToolResult } from "../support/fake-kernel/state.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, startWireguardGo, uniqueSuffix } from "../support/netns.js";
import { type Checkpoint, type Step, scenario, WG_CONF } from "./kernel-scenario.js";

/**
 * The fake kernel is only worth its speed if it behaves like the real one. The same scenario
 * runs on both; every answer (exit status and message) and the state read back at each
 * checkpoint must match. A real run is recorded in captured/kernel-scenario.json
 * (UPDATE_FIXTURES=1 on the lab), so the unit layer checks the fake against it without root.
 */

type Exec = (step: Step) => Promise<ToolResult>;

const RECORDED = path.join(import.meta.dirname, "captured", "kernel-scenario.json");
const RECORDED_WG = "wgrec0";
const WG_PORT = 51999;

const kindOf = (l: Record<string, unknown>) =>
  (l.linkinfo as { info_kind?: string } | undefined)?.info_kind;

/** The state as the tools print it, without what the fake leaves out on purpose. */
async function readState(exec: Exec, wgName: string) {
  const out = async (tool: string, ...args: string[]) => (await exec({ tool, args })).stdout.trim();
  const json = async (...args: string[]) =>
    JSON.parse((await out("ip", ...args)) || "[]") as Record<string, unknown>[];
  const sorted = (items: unknown[]) => items.map((i) => JSON.stringify(i)).sort();
  // The local table, link-local and multicast routes are the kernel's own: netpol never reads them.
  const ours = (r: Record<string, unknown>) =>
    r.table !== "255" && !String(r.dst).startsWith("fe80:") && r.dst !== "ff00::/8";
  const links = await json("-d", "-N", "-json", "address", "show");
  return {
    links: sorted(
      links.map((l) => ({
        ifname: l.ifname,
        flags: l.flags,
        mtu: l.mtu,
        master: l.master,
        link: l.link,
        // A bridge's operstate follows its ports through STP timers: not stable enough to compare.
        operstate: kindOf(l) === "bridge" ? undefined : l.operstate,
        kind: kindOf(l),
        ifalias: l.ifalias,
      })),
    ),
    addresses: sorted(
      links.flatMap((l) =>
        (l.addr_info as Record<string, unknown>[])
          .filter((a) => a.scope !== "253")
          .map((a) => [l.ifname, a.family, a.local, a.prefixlen, a.scope]),
      ),
    ),
    // As netpol reads them (-d -N), as tests do (-N), and without a family (then both).
    routes: sorted(
      (
        await Promise.all(
          [["-d"], []].flatMap((d) =>
            ["-4", "-6", "-N"].map((f) =>
              json(...d, "-N", f, "-json", "route", "show", "table", "all"),
            ),
          ),
        )
      )
        .flat()
        .filter(ours),
    ),
    rules: (
      await Promise.all(
        [["-d"], []].flatMap((d) =>
          ["-4", "-6"].map((f) => json(...d, "-N", f, "-json", "rule", "show")),
        ),
      )
    ).flat(),
    nft: await out("nft", "list", "ruleset"),
    // wireguard-go keeps peers in a map: their order in a dump is not stable. One interface
    // named, as netpol reads it (`wg show all` unlinks other programs' sockets), its lines
    // headed by the name as the recorded run's are.
    wireguard: (await out("wg", "show", wgName, "dump"))
      .split("\n")
      .filter(Boolean)
      .map((l) => `${wgName}\t${l}`)
      .sort(),
    // As netpol reads them; pids differ from run to run, the process names do not.
    listeners: parseListeners(await out("ss", "-H", "-l", "-n", "-t", "-u", "-p"))
      .map((l) => JSON.stringify({ ...l, process: l.process?.name }))
      .sort(),
    sysctls: await out(
      "sysctl",
      "-e",
      "net.ipv4.ip_forward",
      "net.ipv4.conf.all.forwarding",
      "net.ipv4.conf.a0.rp_filter",
      "net.ipv4.conf.a0.forwarding",
      "net.ipv6.conf.a0.accept_ra",
      "net.ipv4.conf.b0.rp_filter",
    ),
  };
}

interface Played {
  answers: { step: string; exitCode: number; stderr: string }[];
  states: Record<string, Awaited<ReturnType<typeof readState>>>;
}

async function play(
  exec: Exec,
  wgName: string,
  confFile: string,
  settle = async () => {},
): Promise<Played> {
  const played: Played = { answers: [], states: {} };
  for (const item of scenario(wgName, confFile)) {
    if ("checkpoint" in item) {
      await settle();
      played.states[(item as Checkpoint).checkpoint] = await readState(exec, wgName);
      continue;
    }
    const r = await exec(item);
    const step = `${item.tool} ${item.args.join(" ").replace(confFile, "CONF")}${item.input ? ` <<< ${item.input.split("\n")[0]}…` : ""}`;
    played.answers.push({ step, exitCode: r.exitCode, stderr: r.stderr.trim() });
  }
  return played;
}

function fakeExec(kernel: FakeKernel): Exec {
  return async (step) => {
    const r = kernel.exec(step.tool, step.args, step.input ?? "");
    if (!r) throw new Error(`fake kernel: no tool ${step.tool}`);
    return r;
  };
}

async function withConf<T>(use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-fk-"));
  try {
    const file = path.join(dir, "wg.conf");
    await writeFile(file, WG_CONF(WG_PORT), { mode: 0o600 });
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("the fake kernel", () => {
  it("answers and ends up as the recorded run on a real namespace did", async () => {
    const recorded = JSON.parse(await readFile(RECORDED, "utf8")) as Played;
    const fake = await withConf((file) => play(fakeExec(new FakeKernel()), RECORDED_WG, file));
    expect(fake.answers).toEqual(recorded.answers);
    expect(fake.states).toEqual(recorded.states);
  });
});

describeLive("the fake kernel against a real namespace", () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await createNetns("npfk");
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it("answers every step as the real tools do and holds the same state at each checkpoint", async () => {
    const wgName = `wgfk${uniqueSuffix()}`;
    const realExec: Exec = async (step) => {
      if (step.tool === "wireguard-go") {
        await startWireguardGo(ns, step.args[0] ?? "");
        return { stdout: "", stderr: "", exitCode: 0 };
      }
      const r = await execa("ip", ["netns", "exec", ns.name, step.tool, ...step.args], {
        input: step.input ?? "",
        reject: false,
        env: { LC_ALL: "C" },
      });
      return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1 };
    };
    const [real, fake] = await withConf(async (file) => [
      // Carrier changes reach `ip link` through the kernel's linkwatch, up to a second later.
      await play(realExec, wgName, file, () => sleep(1100)),
      await play(fakeExec(new FakeKernel()), wgName, file),
    ]);
    if (process.env.UPDATE_FIXTURES === "1") {
      const text = JSON.stringify(real, null, 1).replaceAll(wgName, RECORDED_WG);
      await writeFile(RECORDED, `${text}\n`);
    }
    expect(fake.answers).toEqual(real.answers);
    expect(fake.states).toEqual(real.states);
  });
});
