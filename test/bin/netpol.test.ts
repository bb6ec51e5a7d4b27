import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";
import { crc32 } from "node:zlib";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * bin/netpol.js compiles lib/main.cjs with the V8 code cache deploy/bundle.mjs wrote beside it.
 * A cache that is not this build's, or not whole, must be left unused, and every command must
 * answer exactly as it does compiled from source. NETPOL_CODE_CACHE=report makes the loader say
 * what it did with the cache, on stderr's first line.
 */

const root = fileURLToPath(new URL("../../", import.meta.url));
const policy = path.join(root, "policies/a-vlan-via-vpn.yaml");
let tmp: string;

beforeAll(async () => {
  if (!existsSync(path.join(root, "lib/main.cjs.v8cache"))) {
    throw new Error("lib/main.cjs.v8cache is missing: build first with `npm run build`");
  }
  tmp = await mkdtemp(path.join(os.tmpdir(), "netpol-bin-"));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A copy of the package's bin/ and lib/, whose cache a test may spoil. */
async function copy(name: string): Promise<{ dir: string; cache: string }> {
  const dir = path.join(tmp, name);
  for (const part of ["bin", "lib", "package.json"]) {
    await cp(path.join(root, part), path.join(dir, part), { recursive: true });
  }
  return { dir, cache: path.join(dir, "lib/main.cjs.v8cache") };
}

async function netpol(dir: string, args: string[], cache: "report" | "off" = "report") {
  const r = await execa("node", [path.join(dir, "bin/netpol.js"), ...args], {
    reject: false,
    // As a user runs it: V8 flags in NODE_OPTIONS would make V8 refuse the build's cache.
    env: { NETPOL_CODE_CACHE: cache, NODE_OPTIONS: undefined },
    stripFinalNewline: false,
  });
  const stderr = String(r.stderr);
  const report = /^netpol: code cache (\w+)\n/.exec(stderr);
  return {
    cache: report?.[1],
    answer: {
      code: r.exitCode,
      stdout: String(r.stdout),
      stderr: stderr.slice(report?.[0].length),
    },
  };
}

/** The command's answer with the cache unread: what every other run must print. */
const fromSource = async (dir: string, args: string[]) => (await netpol(dir, args, "off")).answer;

const commands = [
  ["validate", policy],
  ["validate", path.join(root, "package.json")],
  ["render", policy, "--site", "nowhere", "--out", "/nonexistent"],
  ["--version"],
];

describe("the code cache", () => {
  it("is the build's own, taken, and every command answers as compiled from source", async () => {
    for (const args of commands) {
      const r = await netpol(root, args);
      expect(r.cache, args.join(" ")).toBe("accepted");
      expect(r.answer).toEqual(await fromSource(root, args));
    }
  });

  it("is left unused when missing, cut short, spoiled, or made for another build", async () => {
    const { dir, cache } = await copy("spoiled");
    const built = await readFile(cache);
    const newline = built.indexOf(10);
    // `netpol-v8cache <bundle id> <crc32> <wrapper>`
    const [magic, id, , ...words] = built.subarray(0, newline).toString().split(" ");
    const wrapper = words.join(" ");
    const payload = built.subarray(newline + 1);
    const headed = (data: Buffer, forId = id, around = wrapper) =>
      Buffer.concat([
        Buffer.from(`${magic} ${forId} ${crc32(data).toString(16)} ${around}\n`),
        data,
      ]);
    const flipped = Buffer.from(payload);
    const middle = flipped.length >> 1;
    flipped.writeUInt8(flipped.readUInt8(middle) ^ 0x40, middle);
    const spoilt: [string, Buffer | undefined, string][] = [
      ["as built", built, "accepted"],
      ["headed as the build heads it", headed(payload), "accepted"],
      ["missing", undefined, "missing"],
      ["cut short", built.subarray(0, built.length >> 1), "unusable"],
      ["a byte changed", Buffer.concat([built.subarray(0, newline + 1), flipped]), "unusable"],
      ["another build's", headed(payload, "0".repeat(id?.length ?? 64)), "unusable"],
      // The same length of text compiled, so V8 would take it: made around another wrapper.
      ["another wrapper's", headed(payload, id, wrapper.replace("exports", "exp0rts")), "unusable"],
      // Named for this build and whole, but V8's data for another script: V8 refuses it.
      ["another script's", headed(new Script("1 + 1").createCachedData()), "rejected"],
    ];
    const args = ["validate", policy];
    const expected = await fromSource(dir, args);
    for (const [what, data, state] of spoilt) {
      await rm(cache, { force: true });
      if (data) await writeFile(cache, data);
      const r = await netpol(dir, args);
      expect(r.cache, what).toBe(state);
      expect(r.answer, what).toEqual(expected);
    }
  });
});
