import type { loadInForce } from "../apply/source/in-force.js";
import type { StateFiles } from "../apply/state/files.js";
import { recordStamp } from "../apply/state/record.js";

export { recordStamp };

type InForce = Awaited<ReturnType<typeof loadInForce>>;

/**
 * The policy in force parsed whole (what status reports on), parsed again only when the record
 * file changed: a resident serving `/status` once a second would otherwise validate the whole
 * policy at each read (at 10,000 objects, most of a second of CPU). A parse that fails is not
 * kept. The parser loads with the first status asked for: an agent that serves none never holds
 * it (bench/agent-memory.ts).
 */
export function inForceMemo(files: StateFiles): () => Promise<InForce> {
  let last: { readonly stamp: string; readonly value: Promise<InForce> } | undefined;
  return async () => {
    const stamp = await recordStamp(files);
    if (stamp === undefined) return undefined;
    if (last?.stamp === stamp) return last.value;
    const value = import("../apply/source/in-force.js").then((m) => m.loadInForce(files));
    const held = { stamp, value };
    last = held;
    value.catch(() => {
      if (last === held) last = undefined;
    });
    return value;
  };
}
