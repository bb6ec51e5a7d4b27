import { writeFile } from "node:fs/promises";
import path from "node:path";
import { applySite } from "../apply/apply.js";
import { planSite } from "../apply/site/plan-site.js";
import { type Target, targetOf } from "../apply/target.js";
import { formatPlan } from "../plan/format.js";
import { parsePolicy } from "../policy/load.js";
import { createRunner } from "../system/runner.js";
import { OWN_SITE } from "./caddy.js";
import { startServers, VPS_CONTROL_URL, VPS_TOKEN_FILE, writeServeTokens } from "./dashboard.js";
import { dialOutOnly, type Lab, labDown, labUp, providerDown, providerUp } from "./lab.js";
import { labPolicy, withControl, withGuestsAndUdp } from "./policy.js";
import { addCounter, counterPackets, eventually, httpGet, httpGetHost, udpAsk } from "./probe.js";
import { ADDR, UDP_PORT, WG_PORT, WHOAMI_PORT } from "./topology.js";

/** The demo's default names; `--name` picks others, so two demos (or tests) never meet. */
export const DEMO_NAME = "npd";

/** Where a demo named `name` keeps its keys, policy, state and process list. */
export function demoDir(name: string): string {
  return name === DEMO_NAME ? "/run/netpol-demo" : `/run/netpol-demo-${name}`;
}

type Say = (line: string) => void;

interface Check {
  readonly what: string;
  readonly ok: boolean;
  readonly saw: string;
}

function target(lab: Lab, role: "home" | "vps"): Target {
  return targetOf(createRunner(lab.names.ns(role)), path.join(lab.dir, "state"));
}

async function check(
  what: string,
  probe: Promise<{ ok: boolean; text: string }>,
  expect: (r: { ok: boolean; text: string }) => boolean,
): Promise<Check> {
  const r = await probe;
  return {
    what,
    ok: expect(r),
    saw: !r.ok
      ? `failed: ${r.text}`
      : r.text === ""
        ? "an empty answer"
        : `answered from ${r.text}`,
  };
}

/**
 * What the home publishes through the VPS with no inbound connection to the home at all, and
 * the guest VLAN leaving by the VPS's static address, fail closed.
 */
async function publishedChecks(lab: Lab, note: (c: Check) => void): Promise<void> {
  const www = lab.names.ns("www");
  const vps = `http://${ADDR.vps}/`;
  const guestsOut = () => httpGet(lab.names.ns("vl7"), `http://${ADDR.www}:${WHOAMI_PORT}/`, 1500);
  note(
    await check(
      "internet → the home's address: dropped by its ISP (dial-out only)",
      httpGet(www, `http://${ADDR.homeWan}:${WHOAMI_PORT}/`, 1000),
      (r) => !r.ok,
    ),
  );
  note(
    await check(
      "internet → http://blog.example.org via the VPS's Caddy reaches the home page (X-Forwarded-For: the client)",
      eventually(
        () => httpGetHost(www, vps, "blog.example.org"),
        (r) => r.ok && r.text !== "",
      ),
      (r) => r.text === `10.99.0.1 for ${ADDR.www}`,
    ),
  );
  note(
    await check(
      `internet → the VPS's own site ${OWN_SITE.host} on the same Caddy still answers`,
      httpGetHost(www, vps, OWN_SITE.host),
      (r) => r.text === OWN_SITE.body,
    ),
  );
  note(
    await check(
      "internet → a hostname netpol does not publish gets Caddy's empty answer, nothing from home",
      httpGetHost(www, vps, "other.example.net"),
      (r) => r.ok && r.text === "",
    ),
  );
  note(
    await check(
      `internet → udp ${ADDR.vps}:${UDP_PORT} reaches the home's UDP service keeping the client's address`,
      udpAsk(www, ADDR.vps, UDP_PORT),
      (r) => r.text === ADDR.www,
    ),
  );
  note(
    await check(
      `guest VLAN 7 → internet leaves by the VPS's static address ${ADDR.vps}`,
      eventually(guestsOut, (r) => r.ok),
      (r) => r.text === ADDR.vps,
    ),
  );
  await addCounter(lab.names.ns("isp"), "guests", `iifname "home" tcp dport ${WHOAMI_PORT}`);
  // The tunnel cut where it runs (the ISP drops its packets): the home's resident (netpol serve)
  // would put a device merely set down straight back up, as it holds the policy.
  const cut = `table inet labcut {\n chain cut { type filter hook forward priority -310; iifname "home" udp dport ${WG_PORT} drop; }\n}\n`;
  await lab.run("isp").run("nft", ["-f", "-"], { input: cut });
  note(
    await check(
      "tunnel to the VPS cut at the ISP: guest VLAN 7 → internet is refused",
      guestsOut(),
      (r) => !r.ok,
    ),
  );
  const leaked = await counterPackets(lab.names.ns("isp"), "guests");
  note({
    what: "packets from VLAN 7 on the home's ISP link",
    ok: leaked === 0,
    saw: String(leaked),
  });
  await lab.run("isp").run("nft", ["delete", "table", "inet", "labcut"]);
}

/**
 * Builds the lab, applies the scenario policy to home and vps, then shows traffic taking the
 * intended paths, including the kill switch. Returns false if any check failed.
 */
export async function runDemo(main: string, say: Say, name = DEMO_NAME): Promise<boolean> {
  const dir = demoDir(name);
  await labDown(dir);
  say(
    `building the lab (namespaces ${name}-lan1, -vl6, -vl7, -home, -isp, -vpn, -vps, -www; Caddy on the VPS serving ${OWN_SITE.host}) ...`,
  );
  const lab = await labUp(name, dir);
  // The home gives up its static address: its ISP lets no connection in.
  await dialOutOnly(lab);
  const policyFile = path.join(dir, "policy.yaml");
  await writeServeTokens(dir);
  const text = withControl(
    withGuestsAndUdp(labPolicy(lab.names, lab.keys), lab.names),
    VPS_CONTROL_URL,
    VPS_TOKEN_FILE,
  );
  await writeFile(policyFile, text, { mode: 0o600 });
  const loaded = parsePolicy(text, policyFile);
  const input = (site: "home" | "vps") => ({ ...loaded, keyDir: dir, site });
  say(`policy: ${policyFile}\n`);

  for (const site of ["vps", "home"] as const) {
    const t = target(lab, site);
    const policy = input(site);
    say(formatPlan((await planSite(t, policy)).plan, t.files.scope).trimEnd());
    const r = await applySite(t, policy, "netpol demo");
    say(`  applied and verified with ${t.runner.spawned} commands\n`);
    if (!r.changed) say("  (nothing changed)");
  }

  const checks: Check[] = [];
  const note = (c: Check) => {
    checks.push(c);
    say(`  ${c.ok ? "ok  " : "FAIL"} ${c.what}: ${c.saw}`);
  };
  // Started before the checks, so the page's events tell what they did.
  const dashboard = await startServers(lab, main);
  say("netpol serve on each site (the VPS's on its tunnel address, the home's on its LAN):");
  const login = await eventually(
    () => httpGet(lab.names.ns("lan1"), dashboard.url),
    (r) => r.ok,
  );
  note({
    what: `the home's LAN → the dashboard at ${dashboard.url}`,
    ok: login.ok && login.text.includes('action="/login"'),
    saw: login.ok ? "its login form" : `failed: ${login.text}`,
  });
  note(
    await check(
      `the home → the VPS's netpol serve over the tunnel (${VPS_CONTROL_URL}/healthz)`,
      eventually(
        () => httpGet(lab.names.ns("home"), `${VPS_CONTROL_URL}/healthz`),
        (r) => r.ok,
      ),
      (r) => r.text === '{"ok":true}',
    ),
  );
  say("published through the VPS, the home taking no inbound connection:");
  await publishedChecks(lab, note);

  const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;
  const vl6 = lab.names.ns("vl6");
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
  say(
    "provider tunnel back up (no re-apply; the home's netpol serve, its resident, restores the route):",
  );
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
    say(formatPlan((await planSite(t, input(site))).plan, t.files.scope).trimEnd());
  }
  const failed = checks.filter((c) => !c.ok).length;
  say(
    failed === 0
      ? `\nall ${checks.length} checks passed`
      : `\n${failed} of ${checks.length} checks FAILED`,
  );
  say(
    `\ndashboard: ${dashboard.url} (from the home's LAN; token in ${dashboard.tokenFile}, read-only token in ${dashboard.viewerTokenFile})`,
  );
  say(
    `  open it from the LAN host: ip netns exec ${lab.names.ns("lan1")} chromium --no-sandbox --user-data-dir=$(mktemp -d) ${dashboard.url}`,
  );
  say(`remove the lab with: netpol demo --down${name === DEMO_NAME ? "" : ` --name ${name}`}`);
  return failed === 0;
}
