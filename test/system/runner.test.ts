import { readdirSync } from "node:fs";
import os from "node:os";
import { afterAll, beforeAll, expect, it } from "vitest";
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
});
