import { readdirSync } from "node:fs";
import os from "node:os";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createRunner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";

describeLive("the runner on a live namespace", () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await createNetns("runner");
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it("gives a spooled answer exactly as a piped one, however long, and leaves no file", async () => {
    const runner = createRunner(ns.name);
    // Long enough to fill a pipe many times over: 4,000 routes in one table.
    const routes = Array.from(
      { length: 4000 },
      (_, i) => `route add unreachable 10.${i >> 8}.${i & 255}.0/24 table 7`,
    );
    await runner.run("ip", ["-batch", "-"], { input: routes.join("\n") });
    const list = ["-json", "route", "show", "table", "7"];
    const piped = await runner.run("ip", list);
    const spooled = await runner.run("ip", list, { spool: true });
    expect(spooled.stdout.length).toBeGreaterThan(64 * 1024);
    expect(spooled.stdout).toBe(piped.stdout);
    // It did go through a file, unlinked at once, and not through a pipe.
    const out = await runner.run("readlink", ["/proc/self/fd/1"], { spool: true });
    expect(out.stdout).toMatch(/netpol-\d+-[0-9a-f]+ \(deleted\)$/);
    expect(readdirSync(os.tmpdir()).filter((f) => f.startsWith(`netpol-${process.pid}-`))).toEqual(
      [],
    );
  });

  it("answers through a pipe where no temporary file can be made", async () => {
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = "/nonexistent";
    try {
      const spooled = await createRunner(ns.name).run("ip", ["-json", "link", "show"], {
        spool: true,
      });
      expect(JSON.parse(spooled.stdout)).toContainEqual(expect.objectContaining({ ifname: "lo" }));
      const out = await createRunner(ns.name).run("readlink", ["/proc/self/fd/1"], { spool: true });
      expect(out.stdout).toMatch(/^(pipe|socket):/);
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
    }
  });

  it("reports a spooled command's failure with what the tool said", async () => {
    const runner = createRunner(ns.name);
    await expect(
      runner.run("nft", ["list", "table", "inet", "absent"], { spool: true }),
    ).rejects.toThrow(/No such file or directory/);
  });

  it("runs a session (ip monitor) in the namespace, line by line, until stopped", async () => {
    const runner = createRunner(ns.name);
    const stop = new AbortController();
    const lines: string[] = [];
    const session = runner.session("ip", ["-o", "monitor", "link"], {
      signal: stop.signal,
      onLine: (line) => lines.push(line),
    });
    // The monitor runs inside the namespace (setpriv and `ip netns exec` exec into it).
    const monitors = async () => {
      const pids = (await execa("pgrep", ["-f", "^ip -o monitor link$"], { reject: false })).stdout
        .split("\n")
        .filter(Boolean);
      const here = await Promise.all(
        pids.map(async (pid) => (await execa("ip", ["netns", "identify", pid])).stdout === ns.name),
      );
      return pids.filter((_, i) => here[i]);
    };
    await vi.waitFor(async () => expect(await monitors()).toHaveLength(1), { timeout: 10_000 });
    await ns.exec(["ip", "link", "add", "mon0", "type", "bridge"]);
    await vi.waitFor(() => expect(lines.join("\n")).toMatch(/: mon0: /), { timeout: 10_000 });
    stop.abort();
    await session;
    await vi.waitFor(async () => expect(await monitors()).toEqual([]), { timeout: 10_000 });
  });

  it("reports a session that fails as a tool failure", async () => {
    const stop = new AbortController();
    await expect(
      createRunner(`${ns.name}-absent`).session("ip", ["-o", "monitor", "link"], {
        signal: stop.signal,
        onLine: () => {},
      }),
    ).rejects.toMatchObject({ code: "NETPOL_E_TOOL_FAILED" });
  });
});
