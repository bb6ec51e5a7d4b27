import { existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withLock } from "../../../src/apply/state/lock.js";
import { namespaceLockFile } from "../../../src/apply/state/namespace-identity.js";
import { type Target, targetOf } from "../../../src/apply/target.js";
import { FakeKernel } from "../../support/fake-kernel/kernel.js";
import { FakeMachine } from "../../support/fake-kernel/machine.js";

/**
 * Issue 18, item 5: two state directories on one namespace. The lock belongs to the
 * namespace: a second state directory is no way around it, and a dead holder still blocks
 * nobody.
 */
describe("the namespace's lock, across state directories", () => {
  let dir: string;
  let machine: FakeMachine;
  const kernel = new FakeKernel();
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-nslock-"));
    machine = new FakeMachine();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const target = (stateDir: string, netns = "shared", host = machine.host()): Target =>
    targetOf(kernel.runner(netns), path.join(dir, stateDir), { host });

  /** A lock held by a process of the machine until `release` is called. */
  async function held(t: Target) {
    let release!: () => void;
    let taken!: () => void;
    const inside = new Promise<void>((resolve) => {
      taken = resolve;
    });
    const done = withLock(
      t,
      () =>
        new Promise<void>((resolve) => {
          taken();
          release = resolve;
        }),
      { command: "apply (first)" },
    );
    await inside;
    return { release: () => release(), done };
  }

  it("refuses a second state directory on the same namespace, naming the holder's pid and state directory", async () => {
    const holder = machine.start();
    const first = await held(target("a", "shared", machine.host(holder)));
    let ran = false;
    await expect(
      withLock(target("b"), async () => {
        ran = true;
      }),
    ).rejects.toMatchObject({
      code: "NETPOL_E_LOCKED",
      message: expect.stringMatching(
        new RegExp(
          `pid ${holder.pid}\\) is running on namespace shared .*apply \\(first\\).*state in ${path.join(dir, "a")};`,
        ),
      ),
    });
    expect(ran).toBe(false);
    // Its own state directory's lock is not left behind by the refusal.
    expect(existsSync(path.join(dir, "b", "netns-shared.lock"))).toBe(false);
    // Another namespace is not held up.
    await withLock(target("b", "other"), async () => undefined);
    first.release();
    await first.done;
    await withLock(target("b"), async () => undefined);
  });

  it("takes over the lock of a holder that died, whichever state directory it used", async () => {
    const holder = machine.start();
    const first = await held(target("a", "shared", machine.host(holder)));
    machine.kill(holder);
    let ran = false;
    await withLock(target("b"), async () => {
      ran = true;
    });
    expect(ran).toBe(true);
    first.release();
    await first.done;
  });

  it("waits for a live holder when asked to, then runs", async () => {
    const first = await held(target("a"));
    const second = withLock(target("b"), async () => "ran", { waitMs: 60_000 });
    await new Promise((r) => setImmediate(r));
    first.release();
    await first.done;
    expect(await second).toBe("ran");
  });

  it("names a real namespace by its nsfs device and inode, not by a name or a state directory", async () => {
    const own = await stat("/proc/self/ns/net");
    expect(await namespaceLockFile(undefined, dir)).toBe(
      path.join(dir, `netns-${own.dev}-${own.ino}.lock`),
    );
    expect(await namespaceLockFile("netpol-no-such-namespace", dir)).toBeUndefined();
    expect(await namespaceLockFile("../../proc/self/ns/net", dir)).toBeUndefined();
  });
});
