import { describe, expect, it } from "vitest";
import { Revalidating } from "../../src/server/revalidating.js";

/** A read the test settles by hand, counting how many were started. */
function reads() {
  const started: { at: number; settle: (v: string) => void; fail: (e: Error) => void }[] = [];
  const read = (at: number) =>
    new Promise<string>((settle, fail) => {
      started.push({ at, settle, fail });
    });
  return { started, read };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("a value served stale while it is read again", () => {
  it("waits for the first read, and shares it between everyone who asks meanwhile", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 1000, 30_000, () => now);
    const a = value.get();
    const b = value.get();
    expect(started).toHaveLength(1);
    started[0]?.settle("first");
    expect(await a).toBe("first");
    expect(await b).toBe("first");
    now = 999;
    expect(await value.get()).toBe("first");
    expect(started).toHaveLength(1);
  });

  it("serves the stale value at once past its max age, and reads once in the background", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 1000, 30_000, () => now);
    const first = value.get();
    started[0]?.settle("old");
    await first;
    now = 5000;
    expect(await value.get()).toBe("old");
    expect(await value.get()).toBe("old");
    expect(started).toHaveLength(2);
    expect(started[1]?.at).toBe(5000);
    started[1]?.settle("new");
    await tick();
    expect(await value.get()).toBe("new");
    expect(value.age()).toBe(0);
  });

  it("makes a request wait once the value is older than max age and stale window", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 1000, 2000, () => now);
    const first = value.get();
    started[0]?.settle("old");
    await first;
    now = 3001;
    const waiting = value.get();
    let answered: string | undefined;
    void waiting.then((v) => {
      answered = v;
    });
    await tick();
    expect(answered).toBeUndefined();
    started[1]?.settle("new");
    expect(await waiting).toBe("new");
  });

  it("hands out a failed read to the next request, and tries again", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 0, 30_000, () => now);
    const first = value.get();
    started[0]?.settle("good");
    await first;
    now = 10;
    expect(await value.get()).toBe("good");
    started[1]?.fail(new Error("state corrupt"));
    await tick();
    now = 20;
    await expect(value.get()).rejects.toThrow("state corrupt");
    expect(started).toHaveLength(3);
  });

  it("forgets the value and any read under way when invalidated", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 1000, 30_000, () => now);
    const first = value.get();
    started[0]?.settle("before");
    await first;
    now = 2000;
    expect(await value.get()).toBe("before");
    value.invalidate();
    // The read started before the change settles late: it is nobody's value.
    started[1]?.settle("during");
    const after = value.get();
    expect(started).toHaveLength(3);
    started[2]?.settle("after");
    expect(await after).toBe("after");
    await tick();
    expect(await value.get()).toBe("after");
  });

  it("rests after a background read three times as long as it took, then reads again", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 0, 30_000, () => now);
    const first = value.get();
    started[0]?.settle("a");
    await first;
    now = 20;
    expect(await value.get()).toBe("a");
    expect(started).toHaveLength(2);
    now = 40;
    started[1]?.settle("b");
    await tick();
    // Read from 20 to 40: no read starts again before 100.
    now = 99;
    expect(await value.get()).toBe("b");
    expect(started).toHaveLength(2);
    now = 100;
    expect(await value.get()).toBe("b");
    expect(started).toHaveLength(3);
    expect(started[2]?.at).toBe(100);
  });

  it("does not make a request wait for its rest, once nothing may be served stale", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 0, 50, () => now);
    const first = value.get();
    now = 20;
    started[0]?.settle("a");
    await first;
    now = 71;
    const waiting = value.get();
    expect(started).toHaveLength(2);
    started[1]?.settle("b");
    expect(await waiting).toBe("b");
  });

  it("says when the value it gives was read", async () => {
    let now = 0;
    const { started, read } = reads();
    const value = new Revalidating(read, 1000, 30_000, () => now);
    const first = value.getStamped();
    started[0]?.settle("first");
    expect(await first).toEqual({ value: "first", at: 0 });
    now = 5000;
    const stale = value.getStamped();
    expect(await stale).toEqual({ value: "first", at: 0 });
    started[1]?.settle("second");
    await tick();
    expect(await value.getStamped()).toEqual({ value: "second", at: 5000 });
  });
});
