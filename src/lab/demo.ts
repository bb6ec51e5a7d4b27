import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { applySite, planSite, type Target } from "../apply/apply.js";
import { formatPlan } from "../plan/format.js";
import { parsePolicy } from "../policy/load.js";
import { createRunner } from "../system/runner.js";
import { adoptPid, type Lab, labDown, labUp, providerDown, providerUp } from "./lab.js";
import { labPolicy } from "./policy.js";
import { addCounter, counterPackets, eventually, httpGet } from "./probe.js";
import { ADDR, WHOAMI_PORT } from "./topology.js";

export const DEMO_DIR = "/run/netpol-demo";
const PREFIX = "npd";

type Say = (line: string) => void;

interface Check {
  readonly what: string;
  readonly ok: boolean;
  readonly saw: string;
}

function target(lab: Lab, role: "home" | "vps"): Target {
  const netns = lab.names.ns(role);
  return {
    runner: createRunner(netns),
    stateDir: path.join(lab.dir, "state"),
    scope: `netns-${netns}`,
  };
}

async function check(
  what: string,
  probe: Promise<{ ok: boolean; text: string }>,
  expect: (r: { ok: boolean; text: string }) => boolean,
): Promise<Check> {
  const r = await probe;
  return { what, ok: expect(r), saw: r.ok ? `answered from ${r.text}` : `failed: ${r.text}` };
}

/**
 * Builds the lab, applies the scenario policy to home and vps, then shows traffic taking the
 * intended paths, including the kill switch. Returns false if any check failed.
 */
export async function runDemo(main: string, say: Say): Promise<boolean> {
  await labDown(DEMO_DIR);
  say(`building the lab (namespaces ${PREFIX}-lan1, -vl6, -home, -isp, -vpn, -vps, -www) ...`);
  const lab = await labUp(PREFIX, DEMO_DIR);
  const policyFile = path.join(DEMO_DIR, "policy.yaml");
  const text = labPolicy(lab.names, lab.keys);
  await writeFile(policyFile, text, { mode: 0o600 });
  const loaded = parsePolicy(text, policyFile);
  const input = (site: "home" | "vps") => ({ ...loaded, keyDir: DEMO_DIR, site });
  say(`policy: ${policyFile}\n`);

  for (const site of ["vps", "home"] as const) {
    const t = target(lab, site);
    const policy = input(site);
    say(formatPlan((await planSite(t, policy)).plan, t.scope).trimEnd());
    const r = await applySite(t, policy, "netpol demo");
    say(`  applied and verified with ${t.runner.spawned} commands\n`);
    if (!r.changed) say("  (nothing changed)");
  }

  // The watcher puts the egress route back when the provider tunnel returns.
  const log = openSync(path.join(DEMO_DIR, "watch.log"), "a");
  const home = lab.names.ns("home");
  const watcher = spawn(
    process.execPath,
    [
      main,
      "watch",
      policyFile,
      "--site",
      "home",
      "--netns",
      home,
      "--state-dir",
      path.join(DEMO_DIR, "state"),
    ],
    { detached: true, stdio: ["ignore", log, log] },
  );
  watcher.unref();
  if (watcher.pid) await adoptPid(DEMO_DIR, watcher.pid);

  const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;
  const vl6 = lab.names.ns("vl6");
  const checks: Check[] = [];
  const note = (c: Check) => {
    checks.push(c);
    say(`  ${c.ok ? "ok  " : "FAIL"} ${c.what}: ${c.saw}`);
  };
  say("traffic:");
  note(
    await check(
      "VLAN 6 → internet leaves via the provider (exit 203.0.113.2)",
      eventually(
        () => httpGet(vl6, www),
        (r) => r.ok,
      ),
      (r) => r.text === ADDR.vpnExit,
    ),
  );
  note(
    await check(
      "LAN 1 → internet leaves directly (home's WAN 198.51.100.2)",
      httpGet(lab.names.ns("lan1"), www),
      (r) => r.text === ADDR.homeWan,
    ),
  );
  note(
    await check(
      "internet → vps:2222 reaches the home server via the tunnel (sees the VPS)",
      eventually(
        () => httpGet(lab.names.ns("www"), `http://${ADDR.vps}:2222/`),
        (r) => r.ok,
      ),
      (r) => r.text === "10.99.0.1",
    ),
  );
  note(
    await check(
      "internet → vps:8081 reaches it keeping the client's address",
      httpGet(lab.names.ns("www"), `http://${ADDR.vps}:8081/`),
      (r) => r.text === ADDR.www,
    ),
  );

  await addCounter(lab.names.ns("isp"), "leak", `iifname "home" tcp dport ${WHOAMI_PORT}`);
  await providerDown(lab);
  say("provider tunnel down (its device is gone):");
  note(
    await check("VLAN 6 → internet is refused, not leaked", httpGet(vl6, www, 1500), (r) => !r.ok),
  );
  const leaked = await counterPackets(lab.names.ns("isp"), "leak");
  note({ what: "packets from VLAN 6 on the ISP link", ok: leaked === 0, saw: String(leaked) });
  await providerUp(lab);
  say("provider tunnel back up (no re-apply; the watcher restores the route):");
  note(
    await check(
      "VLAN 6 → internet flows again via the provider",
      eventually(
        () => httpGet(vl6, www, 1500),
        (r) => r.ok,
      ),
      (r) => r.text === ADDR.vpnExit,
    ),
  );

  for (const site of ["home", "vps"] as const) {
    const t = target(lab, site);
    say(formatPlan((await planSite(t, input(site))).plan, t.scope).trimEnd());
  }
  const failed = checks.filter((c) => !c.ok).length;
  say(
    failed === 0
      ? `\nall ${checks.length} checks passed`
      : `\n${failed} of ${checks.length} checks FAILED`,
  );
  say("remove the lab with: netpol demo --down");
  return failed === 0;
}
