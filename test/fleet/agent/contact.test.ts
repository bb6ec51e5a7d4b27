import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Target, targetOf } from "../../../src/apply/target.js";
import { ContactWriter, readContact } from "../../../src/fleet/agent/contact.js";
import { collectStatus } from "../../../src/status/collect.js";
import { formatStatus } from "../../../src/status/format.js";
import { createMetrics } from "../../../src/status/metrics.js";
import { FakeMachine } from "../../support/fake-kernel/machine.js";
import { fakeNode } from "../../support/node.js";

/**
 * The site's own word on its fleet agent's contact with etcd, on a fake clock: fresh while etcd
 * answers, STALE with the age once nothing answered for longer than the report's TTL (or the
 * agent is gone), fresh again at the next answer; in `status`'s text and JSON and in /metrics.
 */
describe("a fleet site's stale indicator, on a fake clock", () => {
  const machine = new FakeMachine("fake");
  const node = fakeNode();
  /** The one clock: the agent stamps its contacts with it, status reads ages by it. */
  let now = machine.now();
  const clocked = () => ({ ...machine.host(), now: () => now });
  const agent = clocked();
  let dir = "";
  let agentTarget: Target;
  let statusTarget: Target;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-contact-"));
    agentTarget = targetOf(node.runner(), dir, { host: agent });
    statusTarget = targetOf(node.runner(), dir, { host: clocked() });
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const status = () => collectStatus(statusTarget, now);
  const gauges = async () => {
    const m = createMetrics();
    m.observe(await status());
    return (await m.registry.metrics()).split("\n").filter((l) => l.startsWith("netpol_fleet_"));
  };
  const answered = (writer: ContactWriter) => writer.contact();
  const later = (seconds: number) => {
    now += seconds * 1000;
  };

  it("says nothing of a fleet on a site no agent ever ran on", async () => {
    expect((await status()).fleet).toBeNull();
    expect(await gauges()).toEqual([]);
  });

  it("is stale until etcd first answers, then fresh with the age, then stale past the TTL", async () => {
    const writer = new ContactWriter(agentTarget, ["https://192.0.2.1:2379"], 30);
    await writer.start();
    expect((await status()).fleet).toMatchObject({
      lastContact: null,
      lastContactAgeSeconds: null,
      stale: true,
      agentRunning: true,
      message: expect.stringContaining("fleet: STALE: never reached etcd"),
    });

    await answered(writer);
    later(10);
    const fresh = await status();
    expect(fresh.fleet).toMatchObject({ lastContactAgeSeconds: 10, stale: false });
    expect(formatStatus(fresh)).toContain("  fleet: last reached etcd 10s ago");
    expect(await gauges()).toEqual([
      'netpol_fleet_last_contact_age_seconds{site="netns-fake"} 10',
      'netpol_fleet_stale{site="netns-fake"} 0',
    ]);

    // Cut off: nothing answers for longer than the TTL. The site says so, with the age.
    later(35);
    const cut = await status();
    expect(cut.fleet).toMatchObject({ lastContactAgeSeconds: 45, stale: true });
    expect(formatStatus(cut)).toMatch(
      /fleet: STALE: last reached etcd 45s ago \(.+\), agent pid \d+; the site keeps the policy in force/,
    );
    expect(await gauges()).toEqual([
      'netpol_fleet_last_contact_age_seconds{site="netns-fake"} 45',
      'netpol_fleet_stale{site="netns-fake"} 1',
    ]);

    // Healed: the next answer clears it.
    await answered(writer);
    later(1);
    expect((await status()).fleet).toMatchObject({ lastContactAgeSeconds: 1, stale: false });
  });

  it("keeps the last contact across an agent's restart, and is stale while no agent runs", async () => {
    machine.kill(agent.self());
    const gone = await status();
    expect(gone.fleet).toMatchObject({ agentRunning: false, stale: true });
    expect(gone.fleet?.message).toContain("the agent is not running");
    later(100);
    const again = new ContactWriter(targetOf(node.runner(), dir, { host: clocked() }), [], 30);
    await again.start();
    // The new agent has not reached etcd yet: the contact its predecessor had stands.
    expect((await status()).fleet).toMatchObject({
      agentRunning: true,
      lastContactAgeSeconds: 101,
      stale: true,
    });
  });
});

/**
 * In a rollout etcd answers an agent several times in a second or two: the report is written
 * once for them, and again at the first answer a tenth of the TTL after the one written, so what
 * it says lags the truth by less than that tenth.
 */
describe("a fleet site's contact report, written once per tenth of the TTL", () => {
  const machine = new FakeMachine("fake");
  const node = fakeNode();
  let now = machine.now();
  const clocked = () => ({ ...machine.host(), now: () => now });
  let dir = "";
  let agentTarget: Target;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-contact-"));
    agentTarget = targetOf(node.runner(), dir, { host: clocked() });
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const written = async () => (await readContact(agentTarget))?.lastContact;
  const at = (ms: number) => new Date(ms).toISOString();

  it("writes the first answer, not those within a tenth of the TTL of it, then the next past it", async () => {
    const writer = new ContactWriter(agentTarget, [], 30);
    await writer.start();
    const first = now;
    await writer.contact();
    expect(await written()).toBe(at(first));

    now += 1_000;
    await writer.contact();
    now += 1_500;
    await writer.contact();
    expect(await written()).toBe(at(first));

    now += 600;
    const past = now;
    await writer.contact();
    expect(await written()).toBe(at(past));
  });

  it("writes at once the first answer a new agent hears, whatever its predecessor wrote", async () => {
    now += 500;
    const again = new ContactWriter(agentTarget, [], 30);
    await again.start();
    await again.contact();
    expect(await written()).toBe(at(now));
  });
});
