import { readFile } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import type { Lab } from "../../src/lab/lab.js";
import { eventually, requestLoop } from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { collectStatus, type SiteStatus } from "../../src/status/collect.js";
import { formatStatus } from "../../src/status/format.js";
import { createMetrics } from "../../src/status/metrics.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { type Pebble, servedSerial, startPebble } from "../support/pebble.js";

/**
 * `tls: auto` against a real ACME server: Pebble on the lab's internet host, its DNS pointing
 * the published names at the VPS, whose Caddy already serves a site of the user's own over
 * HTTPS with a certificate of its own.
 */
const OWN_TLS = { host: "own.example.org", body: "the VPS's own site over HTTPS" };
const HOME_PAGE = `10.99.0.1 for ${ADDR.www}`;

describeLive(
  "certificates from an ACME server (Pebble) for the hostnames the VPS publishes",
  () => {
    let lab: Lab;
    let down: () => Promise<void>;
    let pebble: Pebble;
    let ownSerial: string;
    let acmeLog: string;

    const vps = () => lab.names.ns("vps");
    const www = () => lab.names.ns("www");
    const caddy = (method: string, url: string, body: unknown) =>
      execa("ip", [
        ...[
          "netns",
          "exec",
          vps(),
          "curl",
          "-sf",
          "-X",
          method,
          "-H",
          "Content-Type: application/json",
        ],
        ...["-d", JSON.stringify(body), `http://localhost:2019${url}`],
      ]);
    /** GET over HTTPS from the internet host, verified against `ca` alone. */
    const httpsGet = async (name: string, ca: string) => {
      const r = await execa(
        "ip",
        [
          ...["netns", "exec", www(), "curl", "-sS", "--max-time", "5", "--cacert", ca],
          ...["--resolve", `${name}:443:${ADDR.vps}`, `https://${name}/`],
        ],
        { reject: false },
      );
      return r.exitCode === 0 ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.stderr };
    };
    const withAcme =
      (extra = "") =>
      (text: string) =>
        text.replace(
          '    proxy: { tls: "off", httpPort: 80 }\n',
          `    proxy:\n      tls: auto\n      acme:\n        ca: ${pebble.directory}\n        email: ops@example.org\n        trustedRoots: [${pebble.listenerCa}]\n        log: ${acmeLog}\n`,
        ) + extra;
    const status = () => collectStatus(siteTarget(lab, "vps"), Date.now());
    const certificateOf = (s: SiteStatus, hostname: string) =>
      s.certificates.find((c) => c.hostname === hostname);

    beforeAll(async () => {
      ({ lab, down } = await startLab());
      pebble = await startPebble(lab);
      acmeLog = path.join(lab.dir, "caddy", "netpol-acme.log");
      // The user's own HTTPS site, its certificate from the same CA under a policy of the user's.
      await caddy("POST", "/config/apps/http/servers/mine_tls", {
        listen: [":443"],
        routes: [
          {
            match: [{ host: [OWN_TLS.host] }],
            handle: [{ handler: "static_response", body: `${OWN_TLS.body}\n` }],
            terminal: true,
          },
        ],
      });
      await caddy("POST", "/config/apps/tls", {
        automation: {
          policies: [
            {
              subjects: [OWN_TLS.host],
              issuers: [
                {
                  module: "acme",
                  ca: pebble.directory,
                  trusted_roots_pem_files: [pebble.listenerCa],
                },
              ],
            },
          ],
        },
      });
      const own = await eventually(
        () => httpsGet(OWN_TLS.host, pebble.root),
        (r) => r.ok,
        15_000,
      );
      expect(own).toEqual({ ok: true, text: OWN_TLS.body });
      ownSerial = await servedSerial(www(), ADDR.vps, OWN_TLS.host);
      await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", withAcme()), "test");
      await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    }, 90_000);
    afterAll(async () => {
      await down?.();
    });

    it("gets a certificate for blog.example.org from the policy's CA, through HTTP-01", async () => {
      const s = await eventually(
        status,
        (x) => certificateOf(x, "blog.example.org")?.served !== null,
        20_000,
      );
      expect(certificateOf(s, "blog.example.org")).toMatchObject({
        served: { issuer: expect.stringMatching(/^Pebble Intermediate CA/) },
        servedError: null,
        lastIssuanceError: null,
      });
      const events = (await readFile(acmeLog, "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      const blog = events.filter((e) => e.identifier === "blog.example.org");
      expect(blog.map((e) => e.challenge_type).filter(Boolean)).toEqual(["http-01"]);
      expect(blog.map((e) => e.msg)).toContain("certificate obtained successfully");
    });

    it("serves the home's page over HTTPS to a client that trusts only Pebble's root", async () => {
      const r = await eventually(
        () => httpsGet("blog.example.org", pebble.root),
        (x) => x.ok,
      );
      expect(r).toEqual({ ok: true, text: HOME_PAGE });
      // Verified: the same request trusting another root fails.
      expect((await httpsGet("blog.example.org", pebble.listenerCa)).ok).toBe(false);
    });

    it("leaves the user's own HTTPS site its certificate and its certificate policy", async () => {
      expect(await httpsGet(OWN_TLS.host, pebble.root)).toEqual({ ok: true, text: OWN_TLS.body });
      expect(await servedSerial(www(), ADDR.vps, OWN_TLS.host)).toBe(ownSerial);
      const policies = JSON.parse(
        (
          await execa("ip", [
            "netns",
            "exec",
            vps(),
            "curl",
            "-sf",
            "http://localhost:2019/config/apps/tls/automation/policies",
          ])
        ).stdout,
      );
      expect(
        policies.map((p: { "@id"?: string; subjects: string[] }) => p["@id"] ?? p.subjects),
      ).toEqual(["netpol:acme", [OWN_TLS.host]]);
    });

    it("shows a hostname the challenge cannot reach in status, with the CA's error and the reason", async () => {
      await pebble.pointAt("nowhere.example.org", "192.0.2.99");
      const nowhere = `  - { name: nowhere, kind: http, publishOn: vps, hostname: nowhere.example.org, target: "${ADDR.lan1Host}:${WHOAMI_PORT}" }\n`;
      await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", withAcme(nowhere)), "test");
      const s = await eventually(
        status,
        (x) => certificateOf(x, "nowhere.example.org")?.lastIssuanceError != null,
        20_000,
      );
      expect(certificateOf(s, "nowhere.example.org")).toMatchObject({
        served: null,
        servedError: expect.stringContaining("no certificate for the name"),
        lastIssuanceError: {
          message: expect.stringContaining("dial tcp 192.0.2.99:80"),
          problem: "urn:ietf:params:acme:error:connection",
        },
        reason: expect.stringMatching(
          /^nowhere\.example\.org resolves to 192\.0\.2\.99, which is not this site \(203\.0\.113\.70\): /,
        ),
      });
      expect(formatStatus(s)).toMatch(
        /certificate nowhere\.example\.org: NONE SERVED .*\n {4}last issuance error at .*dial tcp 192\.0\.2\.99:80.*\n {4}reason: nowhere\.example\.org resolves to 192\.0\.2\.99/,
      );
      const metrics = createMetrics();
      metrics.observe(s);
      const text = await metrics.registry.metrics();
      expect(text).toContain(
        'netpol_certificate_issuance_failing{hostname="nowhere.example.org"} 1',
      );
      expect(text).toContain('netpol_certificate_issuance_failing{hostname="blog.example.org"} 0');
      expect(text).toMatch(
        /netpol_certificate_expiry_timestamp_seconds\{hostname="blog\.example\.org",issuer="Pebble Intermediate CA [0-9a-f]+"\} \d+/,
      );
    });

    it("renews a certificate under a request loop without one failed request", async () => {
      const before = await servedSerial(www(), ADDR.vps, "blog.example.org");
      const loop = requestLoop(www(), `https://${ADDR.vps}/`, "blog.example.org", 50, pebble.root);
      let after = before;
      try {
        // Requests flow before the renewal and after it, even on a loaded machine.
        await new Promise((r) => setTimeout(r, 1500));
        // Renewal forced as Caddy does it when the window opens: every certificate of netpol's
        // policy is now inside its renewal window.
        await caddy("POST", "/id/netpol:acme/renewal_window_ratio", 1);
        after = (
          await eventually(
            async () => ({ serial: await servedSerial(www(), ADDR.vps, "blog.example.org") }),
            (x) => x.serial !== "" && x.serial !== before,
            20_000,
          )
        ).serial;
        await new Promise((r) => setTimeout(r, 1500));
      } finally {
        const result = await loop.stop();
        expect(result.failed).toEqual([]);
        expect(result.ok).toBeGreaterThan(10);
      }
      expect(after).not.toBe(before);
      // The policy edited behind netpol's back is drift, and an apply puts it back.
      const drift = await planSite(siteTarget(lab, "vps"), labInput(lab, "vps", withAcme()));
      expect(drift.plan.changes).toContainEqual(
        expect.objectContaining({ kind: "certificates", op: "set" }),
      );
      expect(await servedSerial(www(), ADDR.vps, OWN_TLS.host)).toBe(ownSerial);
    });
  },
);
