import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { OWN_SITE } from "../../src/lab/caddy.js";
import { dialOutOnly, inboundDropped, type Lab } from "../../src/lab/lab.js";
import { withGuestsAndUdp } from "../../src/lab/policy.js";
import {
  addCounter,
  counterPackets,
  eventually,
  httpGet,
  httpGetHost,
  udpAsk,
} from "../../src/lab/probe.js";
import { ADDR, UDP_PORT, WHOAMI_PORT } from "../../src/lab/topology.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

// Scenario C end to end, behind an ISP that lets no connection in to the home: every published
// service works because the home dials out; the guest VLAN leaves by the VPS's static address.
describeLive("scenario C, dial-out only", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  const input = (site: "home" | "vps") =>
    labInput(lab, site, (t) => withGuestsAndUdp(t, lab.names));
  const www = () => lab.names.ns("www");

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    await dialOutOnly(lab);
    await applySite(siteTarget(lab, "vps"), input("vps"), "test");
    await applySite(siteTarget(lab, "home"), input("home"), "test");
  });
  afterAll(async () => {
    await down?.();
  });

  it("lets nothing in to the home: a connection to its address is dropped by the ISP", async () => {
    const before = await inboundDropped(lab);
    const r = await httpGet(www(), `http://${ADDR.homeWan}:${WHOAMI_PORT}/`, 1000);
    expect(r.ok).toBe(false);
    expect(await inboundDropped(lab)).toBeGreaterThan(before);
  });

  it("still publishes HTTP by hostname, a TCP port and a UDP port through the VPS", async () => {
    const blog = await eventually(
      () => httpGetHost(www(), `http://${ADDR.vps}/`, "blog.example.org"),
      (r) => r.ok && r.text !== "",
    );
    expect(blog).toEqual({ ok: true, text: `10.99.0.1 for ${ADDR.www}` });
    expect(await httpGetHost(www(), `http://${ADDR.vps}/`, OWN_SITE.host)).toEqual({
      ok: true,
      text: OWN_SITE.body,
    });
    expect(await httpGet(www(), `http://${ADDR.vps}:2222/`)).toEqual({
      ok: true,
      text: "10.99.0.1",
    });
    expect(await udpAsk(www(), ADDR.vps, UDP_PORT)).toEqual({ ok: true, text: ADDR.www });
  });

  it("sends the guest VLAN out by the VPS's static address", async () => {
    const r = await eventually(
      () => httpGet(lab.names.ns("vl7"), `http://${ADDR.www}:${WHOAMI_PORT}/`),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: ADDR.vps });
  });

  it("fails closed with the tunnel down: no route, and not one packet on the home's ISP link", async () => {
    const home = lab.run("home");
    await addCounter(lab.names.ns("isp"), "guests", `iifname "home" tcp dport ${WHOAMI_PORT}`);
    await home.run("ip", ["link", "set", "dev", lab.names.wgHome, "down"]);
    try {
      const r = await httpGet(lab.names.ns("vl7"), `http://${ADDR.www}:${WHOAMI_PORT}/`, 1500);
      expect(r).toEqual({ ok: false, text: "EHOSTUNREACH" });
      expect(await counterPackets(lab.names.ns("isp"), "guests")).toBe(0);
    } finally {
      await applySite(siteTarget(lab, "home"), input("home"), "test");
    }
    const back = await eventually(
      () => httpGet(lab.names.ns("vl7"), `http://${ADDR.www}:${WHOAMI_PORT}/`),
      (x) => x.ok,
    );
    expect(back).toEqual({ ok: true, text: ADDR.vps });
  });
});
