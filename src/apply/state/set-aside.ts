import { rename, rm } from "node:fs/promises";
import { NetpolError } from "../../errors.js";
import { isoTime } from "../host.js";
import type { Target } from "../target.js";
import { stateFile } from "./files.js";
import { loadJournal } from "./journal.js";
import { lockHolder } from "./lock.js";
import { loadPending, pendingPath } from "./pending.js";
import { loadRecord, recordPath } from "./record.js";

const isCorrupt = (err: unknown) =>
  err instanceof NetpolError && err.code === "NETPOL_E_STATE_CORRUPT";

/** Runs a loader; true when the file it reads is corrupt (other errors are real). */
async function corruptBy(load: () => Promise<unknown>): Promise<boolean> {
  try {
    await load();
    return false;
  } catch (err) {
    if (isCorrupt(err)) return true;
    throw err;
  }
}

/**
 * `netpol recover`: sets unreadable state files aside (renamed, kept for a look) so commands
 * work again. Links netpol made stay recognisable by their mark, routes and rules by their
 * protocol, nftables by its table; what only a lost record knew is said, so the next apply's
 * result can be checked.
 */
export async function recoverState(target: Target): Promise<string[]> {
  const { files } = target;
  const stamp = isoTime(target.host).replace(/[:.]/g, "-");
  const report: string[] = [];
  const setAside = async (file: string, what: string, consequence: string) => {
    const aside = `${file}.corrupt-${stamp}`;
    await rename(file, aside);
    report.push(`${what} ${file} was unreadable: moved to ${aside}; ${consequence}`);
  };
  if (await corruptBy(() => lockHolder(target))) {
    await rm(stateFile(files, ".lock"), { force: true });
    report.push(`lock ${stateFile(files, ".lock")} was unreadable: removed`);
  }
  if (await corruptBy(() => loadPending(files)))
    await setAside(
      pendingPath(files),
      "pending confirmation",
      "the apply it guarded stays in force (apply the previous policy to go back)",
    );
  if (await corruptBy(() => loadJournal(files)))
    await setAside(
      stateFile(files, ".journal.json"),
      "apply journal",
      "links netpol made are still known by their mark; run apply to finish",
    );
  if (await corruptBy(() => loadRecord(files)))
    await setAside(
      recordPath(files),
      "ownership record",
      "links, routes, rules and nftables are still known by their marks; addresses netpol added to devices it did not create are not, and the policy in force is unknown until the next apply",
    );
  return report;
}
