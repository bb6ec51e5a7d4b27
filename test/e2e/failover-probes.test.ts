import { writeFile } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { withFailover } from "../../src/lab/policy.js";
import { ADDR, type LabNames, WHOAMI_PORT } from "../../src/lab/topology.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { startWatch } from "../support/watcher.js";

/** Scenario D whose VPS path is probed by a TCP connect to the internet host's web port. */
const withTcpProbe = (text: string, names: LabNames) =>
  withFailover(text, names).replace(
    /health: \{ (targets: .*) \}/,
    `health: { $1, probe: { ${names.wg}: { kind: tcp, target: "${ADDR.www}:${WHOAMI_PORT}" } } }`,
  );

// A TCP connect probe on real namespaces: the VPS path is judged by a connect to www's port 8080
// through the VPS tunnel (its packets carry the path's mark). Black-holing that port for
// connections coming from the VPS marks the path down, although ICMP to the VPS still answers;
// lifting it brings the path back.
describeLive("a path probed by TCP connect", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let watch: ReturnType<typeof startWatch>;

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    const edit = (t: string) => withTcpProbe(t, lab.names);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", edit), "test");
    await writeFile(`${lab.dir}/policy.yaml`, labInput(lab, "home", edit).text, { mode: 0o600 });
    watch = startWatch([...homeArgs(lab), "--interval", "0"]);
  }, 60_000);
  afterAll(async () => {
    await watch?.stop();
    await down?.();
  });

  it("calls the path up once its connects through the VPS answer", async () => {
    const up = await watch.waitFor(
      (e) => e.event === "path" && e.path === lab.names.wgHome && e.state === "up",
      20_000,
    );
    expect(up.reason).toBeNull();
  });

  it("marks the path down when its TCP target is black-holed, and up again after", async () => {
    const www = lab.run("www");
    const from = watch.events.length;
    await www.run("nft", ["-f", "-"], {
      input: `table inet labprobe {\n chain in { type filter hook input priority 0; ip saddr ${ADDR.vps} tcp dport ${WHOAMI_PORT} drop; }\n}\n`,
    });
    try {
      const dead = await watch.waitFor(
        (e) => e.event === "path" && e.path === lab.names.wgHome && e.state === "down",
        15_000,
        from,
      );
      expect(dead.reason).toBe(`no answer within 1 s from tcp ${ADDR.www}:${WHOAMI_PORT}`);
    } finally {
      await www.run("nft", ["delete", "table", "inet", "labprobe"]);
    }
    await watch.waitFor(
      (e) => e.event === "path" && e.path === lab.names.wgHome && e.state === "up",
      15_000,
      watch.events.length,
    );
  }, 60_000);
});
