import { existsSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { createRunner, type Runner, withRun } from "../../src/system/runner.js";
import { createWireguardLink, readWireguard } from "../../src/system/wireguard.js";
import { UAPI_DIR } from "../../src/system/wireguard-uapi.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, startWireguardGo, uniqueSuffix } from "../support/netns.js";

/** `runner`, with every command it runs written down. */
function recording(runner: Runner): { runner: Runner; commands: string[] } {
  const commands: string[] = [];
  return {
    commands,
    runner: withRun(runner, (tool, args, options) => {
      commands.push([tool, ...args].join(" "));
      return runner.run(tool, args, options);
    }),
  };
}

// wg(8), listing `all`, unlinks every socket in wireguard-go's machine-wide directory whose
// connect() is refused: another program's wireguard-go that has bound it and not yet listens.
describe("reading WireGuard interfaces", () => {
  it("asks each interface by its name, never `wg show all`, and passes over names that are none", async () => {
    const kernel = new FakeKernel();
    const fake = kernel.runner();
    await fake.run("wireguard-go", ["wgu0"]);
    const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-wgread-"));
    try {
      const peer = generateKeyPair().publicKey;
      const conf = path.join(dir, "wgu0.conf");
      await writeFile(
        conf,
        `[Interface]\nPrivateKey = ${generateKeyPair().privateKey}\nListenPort = 51820\n\n[Peer]\nPublicKey = ${peer}\nAllowedIPs = 10.7.0.0/24\nEndpoint = 192.0.2.7:51820\n`,
      );
      await fake.run("wg", ["setconf", "wgu0", conf]);
      const { runner, commands } = recording(fake);
      const read = await readWireguard(runner, new Set(["wgu0", "wgabsent"]), true);
      expect(commands.filter((c) => c.startsWith("wg "))).toEqual([
        "wg show wgu0 dump",
        "wg show wgabsent dump",
      ]);
      expect(read.live).toEqual([
        {
          name: "wgu0",
          publicKey: expect.any(String),
          listenPort: 51820,
          peers: [expect.objectContaining({ publicKey: peer, allowedIps: ["10.7.0.0/24"] })],
        },
      ]);
      expect([...(read.configs?.keys() ?? [])]).toEqual(["wgu0"]);
      expect(read.configs?.get("wgu0")).toContain(`PublicKey = ${peer}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("still fails on an error that is not a missing interface", async () => {
    const failing = withRun(new FakeKernel().runner(), async () => {
      throw new Error("wg: permission denied");
    });
    await expect(readWireguard(failing, new Set(["wgu0"]))).rejects.toThrow("permission denied");
  });
});

/**
 * A socket bound and not listened on, as a wireguard-go that is starting has it for a moment:
 * a connect() to it is refused. Node has no public call for bind without listen.
 */
function boundSocket(file: string): { close(): void } {
  const { Pipe, constants } = (
    process as unknown as {
      binding(name: "pipe_wrap"): {
        Pipe: new (type: number) => { bind(file: string): number; close(): void };
        constants: { SERVER: number };
      };
    }
  ).binding("pipe_wrap");
  const handle = new Pipe(constants.SERVER);
  const status = handle.bind(file);
  if (status !== 0) throw new Error(`bind ${file}: ${status}`);
  return {
    close() {
      handle.close();
      rmSync(file, { force: true });
    },
  };
}

describeLive("reading WireGuard beside another program's wireguard-go that is starting", () => {
  let ns: Netns;
  const ours = `wr${uniqueSuffix()}`;
  const theirs = path.join(UAPI_DIR, `wf${uniqueSuffix()}.sock`);

  beforeAll(async () => {
    ns = await createNetns("npwgr");
    await startWireguardGo(ns, ours);
  });
  afterAll(async () => {
    await ns?.destroy();
    await stopWireguardGoByName([ours]);
  });

  it("reads its own interface and leaves the other socket where it is", async () => {
    // Bound only around the read: any `wg show all` on the machine (another program's) removes it.
    const bound = boundSocket(theirs);
    try {
      const { live } = await readWireguard(createRunner(ns.name), new Set([ours]), true);
      expect(existsSync(theirs)).toBe(true);
      expect(live.map((w) => w.name)).toEqual([ours]);
    } finally {
      bound.close();
    }
  });
});

// wireguard-go's control sockets are machine-wide: a second interface of the same name, in
// another namespace, cannot start. It logs why on stdout, after a banner on stderr.
describeLive("wireguard-go that cannot start", () => {
  let first: Netns;
  let second: Netns;
  const name = `wq${uniqueSuffix()}`;

  beforeAll(async () => {
    first = await createNetns("npwg1");
    second = await createNetns("npwg2");
    await startWireguardGo(first, name);
  });
  afterAll(async () => {
    await first?.destroy();
    await second?.destroy();
    await stopWireguardGoByName([name]);
  });

  it("says wireguard-go's own error and what to do, not its banner", async () => {
    const err = await createWireguardLink(createRunner(second.name), name, "links").catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "NETPOL_E_TOOL_FAILED" });
    const message = String((err as Error).message);
    expect(message).toContain("UAPI listen error: unix socket in use");
    expect(message).toContain(`another WireGuard interface named ${name} runs on this machine`);
    expect(message).not.toContain("not required");
  });
});
