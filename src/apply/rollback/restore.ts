import { NFT_TABLE, type RouteSpec, type RuleSpec } from "../../compile/desired.js";
import { NetpolError } from "../../errors.js";
import { addressKey, routeKey, ruleKey } from "../../plan/keys.js";
import type { LiveState, Ownership } from "../../plan/types.js";
import {
  addressArgs,
  batchLine,
  linkAdd,
  linkDelete,
  linkMarkArgs,
  routeArgs,
  ruleArgs,
} from "../../render/ip.js";
import { readCaddy, UnansweredWrite, writeCaddy } from "../../system/caddy/admin.js";
import { putRelay, readRelay } from "../../system/haproxy/relay.js";
import { runIpBatch } from "../../system/iproute2/iproute2.js";
import { loadNft } from "../../system/nftables.js";
import type { Runner } from "../../system/runner.js";
import { removeStaleSecrets } from "../../system/secret-file.js";
import { writeSysctls } from "../../system/sysctl.js";
import { createWireguardLink, syncWireguard } from "../../system/wireguard.js";
import { currentOwnership } from "../site/ownership.js";
import { ownedNames, readLive } from "../site/read-live.js";
import { readText, secretDirOf } from "../state/files.js";
import { clearJournal, loadJournal } from "../state/journal.js";
import { clearPending, type Pending } from "../state/pending.js";
import { loadRecord, recordPath, writeRecordText } from "../state/record.js";
import { toAddress } from "../state/schemas.js";
import type { Target } from "../target.js";
import type { Snapshot } from "./snapshot.js";

/** What takes the live state back to a snapshot, as plain commands. */
interface RestoreScript {
  readonly createWireguard: readonly string[];
  readonly links: readonly string[];
  readonly wireguard: readonly (readonly [string, string])[];
  readonly nft: string | undefined;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly sysctls: readonly (readonly [string, string])[];
  readonly deleteLinks: readonly string[];
  /**
   * Caddy's config before the apply (JSON), when the apply changed proxy routes; `unanswered`
   * when the apply's write got no answer (Caddy may still carry it out).
   */
  readonly proxy?: { readonly admin: string; readonly config: string; readonly unanswered?: true };
  /** The relay's configuration before the apply (none: it was stopped), when the apply changed it. */
  readonly relay?: Snapshot["relay"];
}

function linkLines(snapshot: Snapshot, now: LiveState, site: string): string[][] {
  const byName = new Map(now.links.map((l) => [l.name, l]));
  const lines: string[][] = [];
  for (const { spec, up, mtu, alias } of snapshot.links) {
    const have = byName.get(spec.name);
    const set = (...words: string[]) => lines.push(["link", "set", "dev", spec.name, ...words]);
    if (!have && spec.kind !== "wireguard") lines.push(...linkAdd(spec));
    if (alias !== null && have?.alias !== alias) set("alias", alias);
    else if (!have && alias === null) lines.push(linkMarkArgs(spec.name, site));
    if (have?.mtu !== mtu) set("mtu", String(mtu));
    if (have?.up !== up) set(up ? "up" : "down");
  }
  for (const [device, master] of snapshot.masters) {
    if ((byName.get(device)?.master ?? null) === master) continue;
    lines.push(["link", "set", "dev", device, ...(master ? ["master", master] : ["nomaster"])]);
  }
  return lines;
}

/**
 * From the live state now back to the snapshot. Routes and rules are compared whole (all that
 * carry netpol's protocol are its own); links and addresses as far as netpol owns them now or
 * owned them then; sysctls by the keys the snapshot holds.
 */
export function computeRestore(
  snapshot: Snapshot,
  now: LiveState,
  ownedNow: Pick<Ownership, "links" | "addresses">,
  site: string,
): RestoreScript {
  const protocol = snapshot.protocol;
  const wanted = new Set(snapshot.links.map((l) => l.spec.name));
  const present = new Set(now.links.map((l) => l.name));
  const upAfter = new Set([
    ...now.links.filter((l) => l.up && !wanted.has(l.name)).map((l) => l.name),
    ...snapshot.links.filter((l) => l.up).map((l) => l.spec.name),
  ]);
  const beforeRoutes = new Set(snapshot.routes.map((r) => r.key));
  const beforeRules = new Set(snapshot.rules.map((r) => r.key));
  const nowRoutes = new Set(now.routes.owned.map(routeKey));
  const nowRules = new Set(now.rules.owned.map(ruleKey));
  const beforeAddresses = snapshot.addresses.map(toAddress);
  const beforeAddressKeys = new Set(beforeAddresses.map(addressKey));
  const nowAddressKeys = new Set(now.addresses.map(addressKey));
  const exists = (device: string) => present.has(device) || wanted.has(device);

  const lines = (fam: 4 | 6) => {
    const inFamily = (x: RouteSpec | RuleSpec) => ("dst" in x ? x.dst.family : x.family) === fam;
    const addresses = (op: "add" | "del") =>
      fam !== 4
        ? []
        : op === "del"
          ? ownedNow.addresses
              .filter(
                (a) => nowAddressKeys.has(addressKey(a)) && !beforeAddressKeys.has(addressKey(a)),
              )
              .map((a) => batchLine(addressArgs("del", a)))
          : beforeAddresses
              .filter((a) => !nowAddressKeys.has(addressKey(a)) && exists(a.device))
              .map((a) => batchLine(addressArgs("add", a)));
    return [
      ...now.rules.owned
        .filter((r) => inFamily(r) && !beforeRules.has(ruleKey(r)))
        .map((r) => batchLine(ruleArgs("del", r, protocol))),
      ...now.routes.owned
        .filter((r) => inFamily(r) && !beforeRoutes.has(routeKey(r)))
        .map((r) => batchLine(routeArgs("del", r, protocol))),
      ...addresses("del"),
      ...addresses("add"),
      ...snapshot.routes
        .filter(
          (r) =>
            r.family === fam &&
            !nowRoutes.has(r.key) &&
            (r.device === null || upAfter.has(r.device)),
        )
        .map((r) => r.add),
      ...snapshot.rules.filter((r) => r.family === fam && !nowRules.has(r.key)).map((r) => r.add),
    ];
  };
  const reset = `table inet ${NFT_TABLE} {}\ndelete table inet ${NFT_TABLE}\n`;
  const nftNow = now.nft?.listing ?? null;
  return {
    createWireguard: snapshot.links
      .filter((l) => l.spec.kind === "wireguard" && !present.has(l.spec.name))
      .map((l) => l.spec.name),
    links: linkLines(snapshot, now, site).map(batchLine),
    wireguard: snapshot.wireguard,
    nft:
      snapshot.nft === nftNow
        ? undefined
        : snapshot.nft === null
          ? reset
          : `${reset}${snapshot.nft}\n`,
    v4: lines(4),
    v6: lines(6),
    sysctls: snapshot.sysctls.filter(([k, v]) => now.sysctls.get(k) !== v),
    deleteLinks: ownedNow.links.filter((name) => present.has(name) && !wanted.has(name)),
    ...(snapshot.proxy ? { proxy: snapshot.proxy } : {}),
    ...(snapshot.relay ? { relay: snapshot.relay } : {}),
  };
}

/** Runs every part even if one fails, and returns what failed. */
export async function runRestore(
  runner: Runner,
  script: RestoreScript,
  secretDir: string,
): Promise<string[]> {
  const failures: string[] = [];
  const attempt = async (what: string, work: () => Promise<void>) => {
    await work().catch((err: unknown) =>
      failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  const batch =
    (lines: readonly string[], fam: 6 | "any" = "any") =>
    () =>
      runIpBatch(runner, lines, fam, "rollback", true);
  for (const name of script.createWireguard) {
    await attempt(`link ${name}`, () => createWireguardLink(runner, name, "rollback"));
  }
  await attempt("links", batch(script.links));
  for (const [name, conf] of script.wireguard) {
    await attempt(`wireguard ${name}`, () =>
      syncWireguard(runner, name, conf, secretDir, "rollback"),
    );
  }
  if (script.nft !== undefined)
    await attempt("nftables", () => loadNft(runner, script.nft as string, "rollback"));
  await attempt("routing", batch(script.v4));
  await attempt("routing (IPv6)", batch(script.v6, 6));
  await attempt("sysctls", () => writeSysctls(runner, script.sysctls, "rollback"));
  await attempt("links", batch(script.deleteLinks.map((n) => batchLine(linkDelete(n)))));
  const relay = script.relay;
  if (relay)
    await attempt("PROXY-protocol relay", async () =>
      putRelay(runner, await readRelay(relay.files), relay.config ?? undefined, "rollback"),
    );
  const proxy = script.proxy;
  if (proxy) await attempt("Caddy config", () => restoreCaddy(runner, proxy));
  return failures;
}

/**
 * Puts Caddy's earlier config back, unless Caddy still runs it (it refused the new one). Read
 * first: the write must carry the ETag of what Caddy runs now. After a write Caddy never
 * answered, finding the earlier config proves nothing: the write may land later (it did, 25 s
 * on, while netpol said "restored"). Only a write that already landed can be undone for sure;
 * otherwise the proxy's state is said to be unknown, and the rollback is incomplete.
 */
async function restoreCaddy(
  runner: Runner,
  { admin, config, unanswered }: NonNullable<RestoreScript["proxy"]>,
): Promise<void> {
  const unknown = (why: string) => new Error(`the proxy's state is unknown: ${why}`);
  const now = await readCaddy(runner, admin);
  if (!now.reachable) throw unknown(now.error);
  if (JSON.stringify(now.config) === config) {
    if (!unanswered) return;
    throw unknown(
      `Caddy at ${admin} still runs the config from before the apply, but never answered its write and may still carry it out; \`netpol status\` shows netpol's routes there that no record explains, and another apply settles them`,
    );
  }
  await writeCaddy(runner, { admin, etag: now.etag, config: JSON.parse(config) }, "rollback").catch(
    (err: unknown) => {
      throw err instanceof UnansweredWrite ? unknown(err.message) : err;
    },
  );
}

/**
 * Back to `snapshot`: the one way netpol undoes an apply, whether a step of it failed or it was
 * not confirmed in time (the revert, perhaps in another process, perhaps after a crash). What
 * netpol owns now is read from what lasts — the record, the journal of the apply being undone,
 * the marks links carry — never from the applying process's memory, so both agree. Done, the
 * record goes back to the snapshot's and the journal and the pending revert go; with a failure
 * all three stay, so the next attempt still knows what is netpol's. Returns what failed.
 */
export async function restoreTo(
  target: Target,
  snapshot: Snapshot,
  site: string,
  pending: Pending | undefined,
  proxyUnanswered = false,
): Promise<string[]> {
  const { files, runner } = target;
  await removeStaleSecrets(secretDirOf(files));
  // Unreadable, they say nothing: the marks still do, and the snapshot holds the rest.
  const record = await loadRecord(files).catch(() => undefined);
  const journal = await loadJournal(files).catch(() => undefined);
  const names = ownedNames(record?.ownership, journal);
  const now = await readLive(runner, {
    protocol: snapshot.protocol,
    sysctlKeys: [...snapshot.sysctls.map(([k]) => k), ...names.sysctlKeys],
    wgNames: [...snapshot.wireguard.map(([name]) => name), ...names.wgNames],
  });
  const owned = currentOwnership(record?.ownership, journal, now);
  const script = computeRestore(snapshot, now, owned, site);
  const failures = await runRestore(
    runner,
    script.proxy && proxyUnanswered
      ? { ...script, proxy: { ...script.proxy, unanswered: true } }
      : script,
    secretDirOf(files),
  );
  if (failures.length > 0) return failures;
  const before = snapshot.record ?? undefined;
  // A record write that failed (a full filesystem) left the one before in place. Another that
  // fails now is said as what is left undone: the journal and the pending revert stay.
  if ((await readText(recordPath(files))) !== before) {
    const failed = await writeRecordText(files, before).then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    if (failed) return [`record: ${failed}`];
  }
  await clearJournal(files);
  if (pending) await clearPending(target, pending);
  return [];
}

/** Puts the snapshot back after a failed step and says what happened, as the error to throw. */
export async function rollBack(
  target: Target,
  err: unknown,
  undo: { readonly snapshot: Snapshot; readonly site: string; readonly pending?: Pending },
): Promise<NetpolError> {
  const failures = await restoreTo(
    target,
    undo.snapshot,
    undo.site,
    undo.pending,
    err instanceof UnansweredWrite,
  );
  const bug = !(err instanceof NetpolError);
  const cause = err instanceof Error ? err.message : String(err);
  const details = err instanceof NetpolError ? err.details : {};
  if (failures.length > 0) {
    // The journal stays: whatever is left still counts as netpol's for the next apply.
    return new NetpolError(
      bug ? "NETPOL_E_INTERNAL" : "NETPOL_E_ROLLBACK_FAILED",
      `apply failed: ${cause}\nrollback incomplete:\n  ${failures.join("\n  ")}`,
      [],
      { cause: err, details },
    );
  }
  // Stopped by a signal: nothing failed, the operator asked; said as such.
  if (err instanceof NetpolError && err.code === "NETPOL_E_INTERRUPTED")
    return new NetpolError(
      "NETPOL_E_INTERRUPTED",
      `${cause}: rolled back, the previous state was restored`,
      [],
      { cause: err },
    );
  return new NetpolError(
    bug ? "NETPOL_E_INTERNAL" : "NETPOL_E_APPLY_FAILED",
    `apply failed: ${cause}\nthe previous state was restored`,
    [],
    { cause: err, details },
  );
}
