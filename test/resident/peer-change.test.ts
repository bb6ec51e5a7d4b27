import { writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import type { Target } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import { UapiClient, type WireguardControl } from "../../src/system/wireguard-uapi.js";
import { type HubLab, peersOf, randomKey, startHubLab } from "../support/hub-lab.js";
import { hubText } from "../support/hub-text.js";
import { describeLive } from "../support/layers.js";
import type { Netns } from "../support/netns.js";
import { runningResident } from "../support/resident.js";

const SPOKES = 5;
const TOKEN = "peer-change-token-0123456789";

describeLive("one changed peer through the resident, on wireguard-go", () => {
  let ns: Netns;
  let dir: string;
  let wg: string;
  let hubKey: HubLab["hubKey"];
  let keys: string[];
  let target: Target;
  const text = () => hubText({ wg, hubKey: hubKey.publicKey, keys });
  const input = (t = text()) => ({ ...parsePolicy(t, "hub.yaml"), keyDir: dir, site: "hub" });

  let lab: HubLab | undefined;

  beforeAll(async () => {
    lab = await startHubLab("nppeer", SPOKES);
    ({ ns, dir, wg, hubKey, keys, target } = lab);
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("changes only that peer, in one set over the control socket, reading none of the others, starting at most one process", async () => {
    const uapi = new UapiClient();
    const sets: { name: string; lines: readonly string[] }[] = [];
    let gets = 0;
    const wireguard: WireguardControl = {
      get: (name) => {
        gets++;
        return uapi.get(name);
      },
      set: (name, lines) => {
        sets.push({ name, lines });
        return uapi.set(name, lines);
      },
    };
    const { resident, events, stop } = await runningResident(
      target,
      { keyDir: dir },
      { wireguard },
    );
    try {
      await sleep(300);
      const before = await peersOf(ns, wg);
      expect(before.size).toBe(SPOKES);
      // Through the policy as parsed whole, then as text read from the last one (the state
      // compiled from the one before it: each unchanged peer the same object, plan/wg-made.ts).
      for (const [round, asText] of [
        [1, false],
        [3, false],
        [0, true],
        [2, true],
        [4, true],
        [2, true],
      ] as const) {
        const old = keys[round] ?? "";
        keys[round] = randomKey();
        const spawned = resident.target.runner.spawned;
        sets.length = 0;
        gets = 0;
        const result = asText
          ? await resident.applyText(
              { text: text(), name: "hub.yaml", site: "hub", keyDir: dir },
              "test",
            )
          : await resident.apply(input(), "test");
        // The interface is not read whole again (plan, write, verify, snapshot): the model holds it.
        expect(gets, `round ${round}`).toBe(0);
        expect(result.plan.changes.map((c) => c.kind)).toEqual(["wireguard"]);
        expect(resident.target.runner.spawned - spawned, `round ${round}`).toBeLessThanOrEqual(1);
        // One set, naming the peer that went and the one that came, no other.
        expect(sets.map((s) => s.name)).toEqual([wg]);
        const named = (sets[0]?.lines ?? []).filter((l) => l.startsWith("public_key="));
        const hex = (k: string) => Buffer.from(k, "base64").toString("hex");
        expect(named.sort()).toEqual(
          [`public_key=${hex(old)}`, `public_key=${hex(keys[round] ?? "")}`].sort(),
        );
        // Read back by `wg`: the new key holds the old one's address, every other peer is as it was.
        const after = await peersOf(ns, wg);
        expect(after.has(old)).toBe(false);
        expect(after.get(keys[round] ?? "")).toBe(`10.100.0.${round + 1}/32`);
        for (const [i, k] of keys.entries())
          if (i !== round) expect(after.get(k)).toBe(`10.100.0.${i + 1}/32`);
      }
      expect(events.filter((e) => e.event === "error")).toEqual([]);
      const { plan } = await planSite(target, input());
      expect(plan.changes).toEqual([]);

      // Another process (an operator's `netpol apply`) changes a peer behind the resident's
      // model; the resident's next change is planned against the interface as it is now.
      const theirs = [...keys];
      theirs[0] = randomKey();
      await applySite(
        target,
        input(hubText({ wg, hubKey: hubKey.publicKey, keys: theirs })),
        "operator",
      );
      keys[2] = randomKey();
      await resident.apply(input(), "test");
      const held = await peersOf(ns, wg);
      expect([...held.keys()].sort()).toEqual([...keys].sort());
    } finally {
      await stop();
      uapi.close();
    }
  });

  it("killed with -9 in the middle of a posted change (netpol serve): one apply converges", async () => {
    const tokenFile = path.join(dir, "token");
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const file = path.join(dir, "hub.yaml");
    const port = 20000 + Math.floor(Math.random() * 30000);
    const state = ["--netns", ns.name, "--state-dir", path.join(dir, "state")];
    let interrupted = 0;
    for (const ms of [0, 3, 8, 15, 30, 60, 120]) {
      const server = execa(
        process.execPath,
        [
          ...["bin/netpol.js", "serve", "--token-file", tokenFile, "--listen", `127.0.0.1:${port}`],
          ...["--site", "hub", "--key-dir", dir, "--interval", "0", ...state],
        ],
        { reject: false },
      );
      try {
        for (let i = 0; i < 500; i++) {
          const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.ok,
            () => false,
          );
          if (up) break;
          await sleep(20);
        }
        const previous = text();
        const changed = Math.floor(Math.random() * SPOKES);
        keys[changed] = randomKey();
        const posted = fetch(`http://127.0.0.1:${port}/apply`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/yaml" },
          body: text(),
        }).catch(() => undefined);
        await sleep(ms);
        server.kill("SIGKILL");
        await server;
        // No answer: the kill came before the change was done.
        if ((await posted) === undefined) interrupted++;
        // The operator applies one of the two policies (either may be what they meant).
        const converge = ms % 2 === 0 ? text() : previous;
        await writeFile(file, converge);
        const again = await execa(
          process.execPath,
          ["bin/netpol.js", "apply", file, "--site", "hub", "--key-dir", dir, ...state],
          { reject: false },
        );
        expect(again.exitCode, again.stderr).toBe(0);
        const planned = await planSite(target, input(converge));
        expect(planned.plan.changes, `killed ${ms} ms into the change`).toEqual([]);
        expect(planned.interrupted).toBeUndefined();
        const held = await peersOf(ns, wg);
        const wanted = [...converge.matchAll(/site: s\d+, address: [^,]+, publicKey: ([^,]+),/g)];
        expect([...held.keys()].sort()).toEqual(wanted.map((m) => m[1]).sort());
        keys = wanted.map((m) => m[1] ?? "");
      } finally {
        server.kill("SIGKILL");
        await server;
      }
    }
    // Some kills came in the middle of the change.
    expect(interrupted).toBeGreaterThan(0);
  }, 120_000);
});
