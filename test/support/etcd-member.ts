import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";

/** One etcd member (a fleet bench's, a test's), in its namespace, on that namespace's loopback. */
export const ENDPOINT = "http://127.0.0.1:2379";

/** Stops a process a bench or test started, by its PID; one already gone is no error. */
export function kill(pid: number | undefined): void {
  try {
    if (pid !== undefined) process.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/**
 * Starts one etcd member inside `ns` (its data and log under `dir`) and waits until it answers;
 * `stop()` kills it by PID.
 */
export async function startEtcd(ns: string, dir: string): Promise<{ stop(): Promise<void> }> {
  const etcd = execa(
    "ip",
    [
      ...["netns", "exec", ns, "etcd", "--name", "b", "--data-dir", path.join(dir, "etcd")],
      ...["--listen-client-urls", ENDPOINT, "--advertise-client-urls", ENDPOINT],
      ...["--listen-peer-urls", "http://127.0.0.1:2380"],
      ...["--initial-advertise-peer-urls", "http://127.0.0.1:2380"],
      ...["--initial-cluster", "b=http://127.0.0.1:2380"],
      ...["--max-request-bytes", String(16 * 1024 * 1024)],
      ...["--quota-backend-bytes", String(8 * 1024 ** 3)],
      ...["--logger", "zap", "--log-outputs", path.join(dir, "etcd.log")],
    ],
    { stdin: "ignore", stdout: "ignore", stderr: "ignore", reject: false },
  );
  const stop = async () => {
    kill(etcd.pid);
    await etcd;
  };
  try {
    for (const giveUp = Date.now() + 60_000; ; ) {
      const r = await execa(
        "ip",
        ["netns", "exec", ns, "etcdctl", "--endpoints", ENDPOINT, "endpoint", "health"],
        { reject: false },
      );
      if (r.exitCode === 0) break;
      if (Date.now() > giveUp) {
        const log = await readFile(path.join(dir, "etcd.log"), "utf8").catch(() => "(no log)");
        throw new Error(`etcd did not start: ${r.stderr}\n${log.slice(-2000)}`);
      }
      await sleep(500);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}
