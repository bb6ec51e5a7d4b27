import type { Path, Report } from "./diagnostic.js";
import type { ConnectProbe } from "./intent.js";
import type { HealthDocument } from "./schema.js";

type Probes = NonNullable<HealthDocument["probe"]>;
type ProbeDocument = Extract<Probes, { kind: string }>;

function isOne(v: Probes): v is ProbeDocument {
  return typeof (v as { kind?: unknown }).kind === "string";
}

/**
 * Each path's TCP or HTTP probe, in the order of `via`: one probe for every path, or one per
 * path by the name written in `via` (a path not named keeps ICMP). A TCP target is an address:
 * its probe is routed by a rule made for that address.
 */
export function resolveProbes(
  doc: HealthDocument | undefined,
  via: readonly string[],
  path: Path,
  report: Report,
): (ConnectProbe | undefined)[] {
  const probe = doc?.probe;
  if (!probe) return via.map(() => undefined);
  const at: Path = [...path, "health", "probe"];
  if (!isOne(probe)) {
    for (const name of Object.keys(probe)) {
      if (!via.includes(name))
        report({
          path: [...at, name],
          message: `${name} is not a path of this egress; name one of: ${via.join(", ")}`,
        });
    }
  }
  return via.map((name) => {
    const one = isOne(probe) ? probe : (probe as Record<string, ProbeDocument>)[name];
    const where: Path = isOne(probe) ? at : [...at, name];
    if (!one || one.kind === "icmp") return undefined;
    if (one.kind === "http") return { kind: "http", ...one.url };
    if (!one.target.address) {
      report({
        path: [...where, "target"],
        message: `${one.target.host} is a name; write the probe target as an address, e.g. 203.0.113.10:443`,
      });
      return undefined;
    }
    return { kind: "tcp", host: one.target.address, port: one.target.port };
  });
}
