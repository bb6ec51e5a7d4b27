import * as z from "zod";
import type { SiteState } from "../../compile/desired.js";
import type { Cidr, Family } from "../../net/cidr.js";
import { policyHash } from "../../policy/hash.js";
import type { Address } from "../../policy/intent.js";
import type { PolicyInput } from "../source/input.js";
import { readText, type StateFiles, stateFile, writeState } from "./files.js";
import { linkSpec, networkText, siteNetworks } from "./schemas.js";

/**
 * The site's state compiled from the policy last applied, so applying the same text again (a
 * no-op `netpol apply`, every round of `netpol watch`) skips reading, validating and compiling
 * it: at 10,000 objects that was most of a no-op's time. Validation and compilation are pure
 * functions of the text and the site (key files and rt_protos are read by every apply and plan,
 * after this), so the same text compiled by the same build gives the same state. The entry names
 * the text's hash, the site, the key dir and the build; a file that is missing, unreadable, of
 * another shape or for anything else is passed over and the text is fully validated, never an
 * error. It holds public keys and key file names, no secret; written 0600 like every state file.
 */

declare const __NETPOL_BUILD__: string | undefined;

/**
 * The bundle's build id (deploy/bundle-banner.mjs: a hash of the sources, package.json and the
 * lock file, so of netpol's version and its dependencies'), so a new netpol never trusts what an
 * older one compiled. Run from source there is none, and no
 * cache is read or written.
 */
export const BUILD: string | undefined =
  typeof __NETPOL_BUILD__ === "string" ? __NETPOL_BUILD__ : undefined;

const CACHE = ".compiled.json";

/** A policy served from the cache: its state was compiled when this text was last applied. */
type CachedInput = PolicyInput & { readonly desired: SiteState; readonly cached: true };

/** What a compiled state was compiled from: any difference and the entry is not this policy's. */
interface CacheKey {
  readonly build: string;
  readonly policyHash: string;
  readonly site: string;
  readonly keyDir: string;
}

/**
 * Addresses and prefixes are written as text, `4:3221225985` and `4:3221225984/24` (family,
 * the address as a decimal number, prefix): JSON has no bigint, and one string per prefix reads
 * several times faster than an object of three fields at 10,000 routes.
 */
const ADDRESS = /^([46]):(\d{1,39})$/;
const CIDR = /^([46]):(\d{1,39})\/(\d{1,3})$/;
const familyOf = (text: string | undefined): Family => (text === "4" ? 4 : 6);
const address = z
  .string()
  .regex(ADDRESS)
  .transform((t): Address => {
    const [, f, a] = ADDRESS.exec(t) ?? [];
    return { family: familyOf(f), address: BigInt(a ?? 0) };
  });
const cidr = z
  .string()
  .regex(CIDR)
  .transform((t): Cidr => {
    const [, f, a, p] = CIDR.exec(t) ?? [];
    return { family: familyOf(f), address: BigInt(a ?? 0), prefix: Number(p) };
  });
const family = z.union([z.literal(4), z.literal(6)]);
const port = z.number().int().min(0).max(65535);
const table = z.union([z.number().int(), z.literal("main")]);
const version = z.enum(["v1", "v2"]);

/**
 * SiteState as JSON. Strict objects: a field the writer knows and
 * this schema does not makes the entry unreadable, so it is rebuilt rather than half read.
 */
const siteStateSchema = z.strictObject({
  site: z.string(),
  protocol: z.number().int(),
  links: z.array(linkSpec),
  ports: z.array(z.strictObject({ device: z.string(), master: z.string() })),
  addresses: z.array(z.strictObject({ device: z.string(), cidr })),
  routes: z.array(
    z.discriminatedUnion("type", [
      z.strictObject({
        type: z.literal("unicast"),
        table,
        dst: cidr,
        device: z.string(),
        gateway: address.optional(),
        metric: z.number().int().optional(),
        choices: z
          .array(z.strictObject({ device: z.string(), gateway: address.optional() }))
          .optional(),
      }),
      z.strictObject({
        type: z.literal("unreachable"),
        table,
        dst: cidr,
        metric: z.number().int(),
      }),
    ]),
  ),
  rules: z.array(
    z.strictObject({
      family,
      priority: z.number().int(),
      from: cidr.optional(),
      to: cidr.optional(),
      fwmark: z.number().int().optional(),
      fwmask: z.number().int().optional(),
      table,
      suppressPrefixLength: z.number().int().optional(),
    }),
  ),
  nftSets: z.array(
    z.strictObject({
      name: z.string(),
      kind: z.enum(["set", "map"]),
      type: z.string(),
      interval: z.boolean(),
      elements: z.array(z.string()),
      follows: z
        .strictObject({
          table: z.number().int(),
          paths: z.array(z.strictObject({ device: z.string(), element: z.string() })),
          none: z.string(),
        })
        .optional(),
    }),
  ),
  nftChains: z.array(
    z.strictObject({
      name: z.string(),
      base: z
        .strictObject({
          type: z.enum(["filter", "nat", "route"]),
          hook: z.enum(["prerouting", "input", "forward", "output", "postrouting"]),
          priority: z.string(),
        })
        .optional(),
      rules: z.array(z.string()),
    }),
  ),
  wireguard: z.array(
    z.strictObject({
      name: z.string(),
      privateKeyFile: z.string(),
      publicKey: z.string(),
      listenPort: port.optional(),
      peers: z.array(
        z.strictObject({
          site: z.string(),
          publicKey: z.string(),
          allowedIps: z.array(cidr),
          endpoint: z
            .strictObject({ host: z.string(), port, address: address.optional() })
            .optional(),
          keepalive: z.number().int().optional(),
          presharedKeyFile: z.string().optional(),
        }),
      ),
    }),
  ),
  sysctls: z.array(z.tuple([z.string(), z.string()])),
  proxy: z
    .strictObject({
      settings: z.strictObject({
        tls: z.enum(["auto", "off"]),
        httpPort: port,
        httpsPort: port,
        adminListen: z.string(),
        relayPort: port,
        acme: z.strictObject({
          ca: z.string(),
          email: z.string().optional(),
          trustedRoots: z.array(z.string()),
          log: z.string(),
        }),
      }),
      routes: z.array(
        z.strictObject({ service: z.string(), hostname: z.string(), upstream: z.string() }),
      ),
    })
    .optional(),
  published: z
    .strictObject({
      wan: z.string(),
      ports: z.array(
        z.strictObject({
          service: z.string(),
          kind: z.enum(["tcp", "udp"]),
          port,
          relay: z.literal(true).optional(),
        }),
      ),
    })
    .optional(),
  networks: siteNetworks.optional(),
  relay: z
    .strictObject({
      wan: z.string().optional(),
      ports: z.array(
        z.strictObject({ service: z.string(), family, port, target: z.string(), version }),
      ),
      http: z
        .strictObject({
          port,
          routes: z.array(
            z.strictObject({
              service: z.string(),
              hostname: z.string(),
              target: z.string(),
              version,
            }),
          ),
        })
        .optional(),
    })
    .optional(),
}) satisfies z.ZodType<SiteState>;

const keySchema = z.strictObject({
  version: z.literal(2),
  build: z.string(),
  policyHash: z.string(),
  site: z.string(),
  keyDir: z.string(),
  desired: z.unknown(),
});

export const cachePath = (files: StateFiles) => stateFile(files, CACHE);

const keyOf = (
  policy: { hash: string; site: string; keyDir: string },
  build: string,
): CacheKey => ({
  build,
  policyHash: policy.hash,
  site: policy.site,
  keyDir: policy.keyDir,
});

const sameKey = (a: CacheKey, b: CacheKey) =>
  a.build === b.build &&
  a.policyHash === b.policyHash &&
  a.site === b.site &&
  a.keyDir === b.keyDir;

/** The state cached for exactly this policy, or undefined: nothing about the file is an error. */
export async function loadCached(
  files: StateFiles,
  policy: { text: string; site: string; keyDir: string },
  build = BUILD,
): Promise<CachedInput | undefined> {
  let hash = "";
  const desired = await cachedState(files, build, (key, b) => {
    hash = policyHash(policy.text);
    return sameKey(key, keyOf({ ...policy, hash }, b));
  });
  if (!desired || desired.site !== policy.site) return undefined;
  const { site, keyDir } = policy;
  return { text: policy.text, site, keyDir, hash, desired, cached: true };
}

/**
 * The state cached for the policy an apply record names, compiled with whichever key dir (it
 * names key files, not what is routed or filtered), for what reads the policy in force without
 * parsing it (the resident's health follower); undefined as loadCached's.
 */
export function cachedInForce(
  files: StateFiles,
  record: { readonly policyHash: string; readonly site: string },
  build = BUILD,
): Promise<SiteState | undefined> {
  return cachedState(
    files,
    build,
    (key, b) => key.build === b && key.policyHash === record.policyHash && key.site === record.site,
  ).then((desired) => (desired?.site === record.site ? desired : undefined));
}

async function cachedState(
  files: StateFiles,
  build: string | undefined,
  matches: (key: CacheKey, build: string) => boolean,
): Promise<SiteState | undefined> {
  if (build === undefined) return undefined;
  const text = await readText(cachePath(files)).catch(() => undefined);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  // The key first: an entry for another text is passed over without reading its state.
  const key = keySchema.safeParse(json);
  if (!key.success || !matches(key.data, build)) return undefined;
  return readState(key.data.desired);
}

/** Addresses and prefixes as the text above, for JSON.stringify. */
function addressText(_key: string, value: unknown): unknown {
  if (typeof value !== "object" || value === null || !("address" in value)) return value;
  const a = value as Address & { prefix?: number };
  if (typeof a.address !== "bigint") return value;
  return `${a.family}:${a.address}${a.prefix === undefined ? "" : `/${a.prefix}`}`;
}

const stateValue = (desired: SiteState) => ({
  ...desired,
  networks: desired.networks?.map(networkText),
});

/**
 * A compiled state as JSON text, as the cache holds it: also the form in which a fleet's
 * publisher hands each agent its state compiled (src/fleet/prepare.ts).
 */
export const stateJson = (desired: SiteState): string =>
  JSON.stringify(stateValue(desired), addressText);

/** A state read back from stateJson's JSON (parsed), strictly; undefined when it is not one. */
export function readState(value: unknown): SiteState | undefined {
  const read = siteStateSchema.safeParse(value);
  return read.success ? read.data : undefined;
}

/** Keeps the state an apply brought, for the next apply of the same text. */
export async function saveCached(
  files: StateFiles,
  policy: PolicyInput,
  desired: SiteState,
  build = BUILD,
): Promise<void> {
  if (build === undefined || "cached" in policy) return;
  const entry = { version: 2, ...keyOf(policy, build), desired: stateValue(desired) };
  // A cache that is lost or cannot be written costs the next apply a full validation, nothing
  // more: not worth an fsync (up to 0.08 s at 10,000 objects), nor failing an apply that worked.
  try {
    await writeState(cachePath(files), `${JSON.stringify(entry, addressText)}\n`, false);
  } catch {
    // As said: the next apply validates in full.
  }
}
