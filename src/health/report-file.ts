import * as z from "zod";
import { readText, type StateFiles, stateFile, writeState } from "../apply/state/files.js";
import { isRunning, processIdentity, thisProcess } from "../apply/state/process-identity.js";
import type { EgressHealth } from "./monitor.js";

/**
 * The health monitor's latest judgement, for `status` to show: written (not fsynced: it is a
 * report, rebuilt every second) whenever it changes, and believed only while the monitor that
 * wrote it runs. An unreadable one is no report: status then probes once itself.
 */
const HEALTH = ".health.json";

const pathReport = z.strictObject({
  device: z.string(),
  state: z.enum(["unknown", "up", "down"]),
  since: z.string(),
  lastRttMs: z.number().nullable(),
  misses: z.number().int(),
  reason: z.string().nullable(),
});

const canaryReport = z.strictObject({
  url: z.string(),
  state: z.enum(["ok", "leak", "no answer"]),
  seen: z.string().nullable(),
  expected: z.array(z.string()),
  checkedAt: z.string(),
  alarms: z.number().int(),
  reason: z.string().nullable(),
});

const reportSchema = z.strictObject({
  writer: processIdentity,
  updatedAt: z.string(),
  egress: z.array(
    z.strictObject({
      name: z.string(),
      active: z.string().nullable(),
      switches: z.number().int(),
      lastSwitchAt: z.string().nullable(),
      paths: z.array(pathReport),
      canary: canaryReport.optional(),
    }),
  ),
});

export interface HealthReport {
  readonly writer: z.infer<typeof processIdentity>;
  readonly updatedAt: string;
  readonly egress: readonly EgressHealth[];
}

export async function writeHealthReport(
  files: StateFiles,
  egress: readonly EgressHealth[],
  now: number,
): Promise<void> {
  const report: HealthReport = {
    writer: thisProcess(),
    updatedAt: new Date(now).toISOString(),
    egress,
  };
  await writeState(stateFile(files, HEALTH), `${JSON.stringify(report)}\n`, false);
}

/** The report of a monitor that is running now, or undefined. */
export async function readHealthReport(files: StateFiles): Promise<HealthReport | undefined> {
  const text = await readText(stateFile(files, HEALTH)).catch(() => undefined);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = reportSchema.safeParse(json);
  return parsed.success && isRunning(parsed.data.writer) ? parsed.data : undefined;
}
