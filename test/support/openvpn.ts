import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { isAlive, kill, startInNetns } from "../../src/lab/processes.js";

/**
 * Real OpenVPN (Debian's) in the lab's namespaces: a server on the provider's side, clients on
 * the home. Each side has a self-signed certificate made by openssl in the test's directory and
 * trusts the other's by fingerprint (OpenVPN 2.6's --peer-fingerprint): no CA to build. Every
 * daemon runs in the foreground under the PID it is killed by.
 */
export const OPENVPN_PORT = 1194;
/** The server's tunnel subnet; a client gets .2 (topology subnet). */
export const OPENVPN_SERVER = "10.8.0.1";

interface Identity {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint: string;
}

async function identity(dir: string, name: string): Promise<Identity> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await execa("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  const fp = await execa("openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]);
  return { cert, key, fingerprint: fp.stdout.split("=")[1]?.trim() ?? "" };
}

export interface OpenVpnDaemon {
  readonly pid: number;
  readonly log: string;
  /** How many times the client finished connecting (each reconnect adds one). */
  connections(): Promise<number>;
}

function daemon(ns: string, args: readonly string[], log: string): OpenVpnDaemon {
  const pid = startInNetns(ns, ["openvpn", "--log", log, "--verb", "3", ...args]);
  return {
    pid,
    log,
    connections: async () =>
      (
        (await readFile(log, "utf8").catch(() => "")).match(/Initialization Sequence Completed/g) ??
        []
      ).length,
  };
}

export async function waitForConnections(
  d: OpenVpnDaemon,
  count: number,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await d.connections()) >= count) return;
    if (!isAlive(d.pid)) break;
    await sleep(100);
  }
  const log = await readFile(d.log, "utf8").catch(() => "(no log)");
  throw new Error(`openvpn ${d.pid} did not connect ${count} time(s):\n${log.slice(-2000)}`);
}

export interface OpenVpnLab {
  readonly server: OpenVpnDaemon;
  /** Starts a client on the home whose tun device is `dev`; `routeNoexec: false` is the trap. */
  client(dev: string, opts: { readonly routeNoexec: boolean }): Promise<OpenVpnDaemon>;
  /** Kills every daemon it started, by PID. */
  stop(): void;
}

/**
 * A server in `providerNs` listening on `serverAddress`, pushing `redirect-gateway def1` as
 * commercial providers do, and clients in `homeNs` dialing it.
 */
export async function openVpnLab(opts: {
  readonly dir: string;
  readonly providerNs: string;
  readonly homeNs: string;
  readonly serverAddress: string;
  readonly serverDev: string;
}): Promise<OpenVpnLab> {
  const server = await identity(opts.dir, "server");
  const client = await identity(opts.dir, "client");
  const pids: number[] = [];
  const s = daemon(
    opts.providerNs,
    [
      "--dev",
      opts.serverDev,
      "--dev-type",
      "tun",
      "--proto",
      "udp",
      "--local",
      opts.serverAddress,
      "--port",
      String(OPENVPN_PORT),
      "--server",
      "10.8.0.0",
      "255.255.255.0",
      "--topology",
      "subnet",
      "--dh",
      "none",
      "--cert",
      server.cert,
      "--key",
      server.key,
      "--peer-fingerprint",
      client.fingerprint,
      "--push",
      "redirect-gateway def1",
      "--keepalive",
      "1",
      "5",
    ],
    path.join(opts.dir, "server.log"),
  );
  pids.push(s.pid);
  await waitForConnections(s, 1);
  let clients = 0;
  return {
    server: s,
    client: async (dev, { routeNoexec }) => {
      const c = daemon(
        opts.homeNs,
        [
          "--client",
          "--dev",
          dev,
          "--dev-type",
          "tun",
          "--proto",
          "udp",
          "--remote",
          opts.serverAddress,
          String(OPENVPN_PORT),
          "--nobind",
          "--cert",
          client.cert,
          "--key",
          client.key,
          "--peer-fingerprint",
          server.fingerprint,
          "--connect-retry",
          "1",
          ...(routeNoexec ? ["--route-noexec"] : []),
        ],
        // A log of its own: a client started again on the same tun would otherwise be found
        // connected in its predecessor's log, before it has even opened the file (truncating it).
        path.join(opts.dir, `client-${dev}-${++clients}.log`),
      );
      pids.push(c.pid);
      await waitForConnections(c, 1);
      return c;
    },
    stop: () => {
      for (const pid of pids) kill(pid);
    },
  };
}
