import { NetpolError } from "../errors.js";
import type { WgLive, WgPeerLive } from "../plan/live.js";
import type { Runner } from "./runner.js";
import { withSecretFile } from "./secret-file.js";

/**
 * Parses `wg show all dump`. The private key column is dropped here, at the edge, so it never
 * travels further into netpol.
 */
export function parseWgDump(stdout: string): WgLive[] {
  const byName = new Map<string, { publicKey: string; listenPort: number; peers: WgPeerLive[] }>();
  for (const line of stdout.split("\n")) {
    const f = line.split("\t");
    const [name] = f;
    if (name === undefined || name === "") continue;
    if (f.length === 5) {
      byName.set(name, { publicKey: f[2] ?? "", listenPort: Number(f[3]), peers: [] });
    } else if (f.length === 9) {
      const endpoint = f[3] === "(none)" ? undefined : f[3];
      const allowed = f[4] === "(none)" || f[4] === undefined ? [] : f[4].split(",");
      byName.get(name)?.peers.push({
        publicKey: f[1] ?? "",
        endpoint,
        allowedIps: allowed,
        latestHandshake: Number(f[5]),
        rxBytes: Number(f[6]),
        txBytes: Number(f[7]),
        keepalive: f[8] === "off" ? undefined : Number(f[8]),
      });
    }
  }
  return [...byName].map(([name, v]) => ({ name, ...v }));
}

/**
 * One `wg show all dump`, kept to the interfaces named. wireguard-go's sockets are shared by
 * every namespace, so the caller also checks that a name is a link of its own namespace.
 */
export async function readWireguard(runner: Runner, names: ReadonlySet<string>): Promise<WgLive[]> {
  if (names.size === 0) return [];
  const { stdout } = await runner.run("wg", ["show", "all", "dump"], { step: "reading WireGuard" });
  return parseWgDump(stdout).filter((w) => names.has(w.name));
}

/**
 * Creates a WireGuard interface: in the kernel where it has WireGuard, else with wireguard-go
 * (which daemonizes and exits when its interface is deleted).
 */
export async function createWireguardLink(
  runner: Runner,
  name: string,
  step: string,
): Promise<void> {
  try {
    await runner.run("ip", ["link", "add", "name", name, "type", "wireguard"], { step });
  } catch (err) {
    if (!(err instanceof NetpolError) || !/Unknown device type|not supported/i.test(err.message))
      throw err;
    await runner.run("wireguard-go", [name], { step });
  }
}

/**
 * `wg syncconf` changes only what differs, so live sessions of untouched peers survive. The
 * config holds the private key: it goes through a 0600 file in netpol's state directory, never
 * argv nor the shared temp directory.
 */
export async function syncWireguard(
  runner: Runner,
  name: string,
  config: string,
  secretDir: string,
  step: string,
): Promise<void> {
  await withSecretFile(secretDir, config, (file) =>
    runner.run("wg", ["syncconf", name, file], { step }),
  );
}
