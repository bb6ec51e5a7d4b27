import { spawn } from "node:child_process";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";

/** Starts a long-lived process inside a namespace, detached, and returns its PID. */
export function startInNetns(
  ns: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>> = {},
): number {
  // `ip netns exec` execs the command in place, so the PID is the command's own.
  const child = spawn("ip", ["netns", "exec", ns, ...argv], {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, ...env },
  });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${argv.join(" ")} in ${ns}`);
  return child.pid;
}

export function kill(pid: number): void {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // Already gone.
  }
}

/** Stops a process and waits until it is gone: what it cleans up on the way out is done then. */
export async function killAndWait(pid: number, timeoutMs = 5000): Promise<void> {
  kill(pid);
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  // One that does not end on SIGTERM (a shutdown that hangs) is ended outright: gone is gone.
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  const killed = Date.now() + 1000;
  while (isAlive(pid) && Date.now() < killed) await sleep(10);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until a device exists in the namespace (wireguard-go creates it after it starts). */
export async function waitForLink(ns: string, name: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await execa("ip", ["-n", ns, "link", "show", "dev", name], { reject: false });
    if (r.exitCode === 0) return;
    await sleep(50);
  }
  throw new Error(`device ${name} did not appear in ${ns} within ${timeoutMs} ms`);
}

/**
 * Whether wireguard-go's control socket for `name` takes a connection now. It is bound a moment
 * before it listens: a `wg` in between is refused, deletes it as a dead process's, takes the
 * device for a kernel one and fails with "Protocol not supported". Existing is not ready.
 */
export function controlSocketAnswers(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(`/var/run/wireguard/${name}.sock`, () => {
      c.destroy();
      resolve(true);
    });
    c.on("error", () => resolve(false));
  });
}

/** wireguard-go in the foreground under our own PID (never WG_PROCESS_FOREGROUND=""). */
export async function startWireguardGo(ns: string, name: string): Promise<number> {
  const pid = startInNetns(ns, ["wireguard-go", "-f", name]);
  await waitForLink(ns, name);
  // Its control socket comes after the device.
  const deadline = Date.now() + 5000;
  while (!(await controlSocketAnswers(name))) {
    if (Date.now() > deadline)
      throw new Error(`wireguard-go ${name}'s control socket did not answer in 5 s`);
    await sleep(20);
  }
  return pid;
}

/**
 * Stops wireguard-go for interfaces we named, wherever they run: deleting a namespace does not
 * stop it, and netpol's own apply starts it daemonized, so its PID is found by its arguments.
 */
export async function stopWireguardGoByName(names: readonly string[]): Promise<void> {
  for (const name of names) {
    const r = await execa("pgrep", ["-f", `^wireguard-go (-f )?${name}$`], { reject: false });
    for (const pid of r.stdout.split("\n").filter(Boolean)) kill(Number(pid));
  }
}
