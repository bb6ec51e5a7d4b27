import { constants } from "node:fs";
import { mkdir, mkdtemp, open, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { targetOf } from "../../src/apply/target.js";
import { buildApp } from "../../src/server/app.js";
import { readTokenFile } from "../../src/server/token.js";
import { generateKeyPair, publicKeyOf, readPrivateKey } from "../../src/system/keys.js";
import { fakeNode } from "../support/node.js";

/** Resolves with what `work` settled to, or "hung" after `ms`: a FIFO must never block. */
async function within<T>(ms: number, work: Promise<T>): Promise<T | Error | "hung"> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<"hung">((done) => {
    timer = setTimeout(() => done("hung"), ms);
  });
  try {
    return await Promise.race([work.catch((e: Error) => e), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens the FIFO's write end once, which releases a reader an old netpol left blocked on it. */
async function unblock(fifo: string): Promise<void> {
  const h = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
  await h?.close();
}

describe("key and token files that are not small regular files", () => {
  let dir: string;
  const fifo = () => path.join(dir, "fifo.key");

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-keys-"));
    await execa("mkfifo", ["-m", "600", fifo()]);
    await writeFile(path.join(dir, "huge.key"), "", { mode: 0o600 });
    await truncate(path.join(dir, "huge.key"), 3 * 2 ** 30);
    await mkdir(path.join(dir, "dir.key"), { mode: 0o700 });
  });
  afterAll(async () => {
    if (!dir) return;
    await unblock(fifo());
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["a FIFO", "fifo.key", "is a FIFO (named pipe), not a file"],
    ["a 3 GB file", "huge.key", "is 3221225472 bytes; a WireGuard key file holds 45"],
    ["a directory", "dir.key", "is a directory, not a file"],
  ])("refuses %s as a private key at once, saying what it is", async (_what, name, says) => {
    const r = await within(2_000, readPrivateKey(dir, name));
    expect(r).toMatchObject({ code: "NETPOL_E_KEY_FILE" });
    expect(String((r as Error).message)).toContain(`${path.join(dir, name)} ${says}`);
  });

  it.each([
    ["a FIFO", "fifo.key", "is a FIFO (named pipe), not a file"],
    ["a 3 GB file", "huge.key", "is 3221225472 bytes, too large for a token"],
  ])("refuses %s as a token file at once", async (_what, name, says) => {
    const r = await within(2_000, readTokenFile(path.join(dir, name)));
    expect(r).toMatchObject({ code: "NETPOL_E_USAGE" });
    expect(String((r as Error).message)).toContain(says);
  });

  describe("POST /apply naming one", () => {
    let app: FastifyInstance;
    const token = "t0ken-for-tests-0123456789";
    const policy = (keyFile: string) => `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
  far: {}
tunnels:
  - name: wgk
    members:
      - { site: far, address: 10.98.0.1/24, endpoint: 192.0.2.1:51820, publicKey: ${generateKeyPair().publicKey}, privateKeyFile: far.key }
      - { site: home, address: 10.98.0.2/24, publicKey: ${generateKeyPair().publicKey}, privateKeyFile: ${keyFile} }
`;
    const post = (body: string) =>
      app.inject({
        method: "POST",
        url: "/apply?site=home",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/yaml" },
        payload: body,
      });

    beforeAll(async () => {
      const node = fakeNode();
      node.kernel.plug("lan0");
      app = await buildApp({
        target: targetOf(node.runner(), path.join(dir, "state")),
        token,
        keyDir: dir,
        site: "home",
      });
    });
    afterAll(async () => {
      await app?.close();
    });

    it("answers 422 for a FIFO instead of hanging with the lock held, and the next apply is not refused as locked", async () => {
      for (const keyFile of ["fifo.key", "fifo.key", "huge.key"]) {
        // A hang is for ever; the first answer starts the validator's worker, which took over
        // 5 s beside the other unit files at load 17.
        const r = await within(20_000, post(policy(keyFile)));
        expect(r).not.toBe("hung");
        if (r === "hung" || r instanceof Error) return;
        expect(r.statusCode).toBe(422);
        expect(r.json().error.code).toBe("NETPOL_E_KEY_FILE");
      }
    });
  });
});

describe("publicKeyOf", () => {
  it("gives each key its own public key as `wg pubkey` does, keys asked in turn and again", async () => {
    const keys = [generateKeyPair(), generateKeyPair()].map((k) => k.privateKey);
    for (const key of [keys[0], keys[0], keys[1], keys[0], keys[1]] as string[]) {
      const { stdout } = await execa("wg", ["pubkey"], { input: `${key}\n` });
      expect(publicKeyOf(key)).toBe(stdout.trim());
    }
  });
});
