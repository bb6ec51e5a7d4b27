import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa, type ResultPromise } from "execa";
import { createNetns, type Netns } from "./netns.js";

/**
 * A real etcd cluster for the live layer: each member in a namespace of its own, joined with
 * a control namespace and the sites by one bridge (a "switch" namespace), TLS everywhere
 * (certificates made here with openssl), data in the test's directory, every member killed
 * by its PID at the end. Addresses are the documentation range 198.51.100.0/24.
 */

export const SEGMENT = "198.51.100";
export const memberAddress = (i: number) => `${SEGMENT}.${11 + i}`;

export interface Member {
  readonly name: string;
  readonly ns: Netns;
  readonly url: string;
  pid: number | undefined;
}

export interface Certs {
  readonly dir: string;
  readonly ca: string;
  /**
   * The client certificate and key of `name` (made on demand). Without a CommonName, as etcd's
   * JSON gateway requires (the user comes from --user); `cn` gives one (etcdctl's root: gRPC
   * takes the CN as the user).
   */
  client(name: string, cn?: boolean): Promise<{ cert: string; key: string }>;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await execa("openssl", args, { cwd, stdin: "ignore" });
}

/** A CA, one server certificate for every member's address, and client certificates on demand. */
export async function makeCerts(dir: string, addresses: readonly string[]): Promise<Certs> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-subj",
      "/CN=netpol-test-ca",
      "-days",
      "2",
    ],
    dir,
  );
  const sign = async (name: string, ext: string, subject = `/CN=${name}`) => {
    await openssl(
      ["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject],
      dir,
    );
    await writeFile(path.join(dir, `${name}.ext`), ext);
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      ],
      dir,
    );
  };
  const san = addresses.map((a) => `IP:${a}`).join(",");
  await sign("etcd-member", `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  return {
    dir,
    ca: path.join(dir, "ca.crt"),
    async client(name, cn = false) {
      await sign(
        name,
        "extendedKeyUsage=clientAuth\n",
        cn ? `/CN=${name}` : `/O=netpol/OU=${name}`,
      );
      return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
    },
  };
}

/** The bridge the members, the control namespace and the sites hang on. */
export interface Segment {
  readonly sw: Netns;
  /** Joins `ns` to the bridge with `address`/24 on its interface `ifname`. */
  join(ns: Netns, ifname: string, address: string): Promise<void>;
}

export async function makeSegment(prefix: string): Promise<Segment> {
  const sw = await createNetns(`${prefix}sw`);
  await sw.exec(["ip", "link", "add", "br0", "type", "bridge"]);
  await sw.exec(["ip", "link", "set", "br0", "up"]);
  let n = 0;
  return {
    sw,
    async join(ns, ifname, address) {
      const port = `p${n++}`;
      await sw.exec([
        "ip",
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        ifname,
        "netns",
        ns.name,
      ]);
      await sw.exec(["ip", "link", "set", port, "master", "br0", "up"]);
      await ns.exec(["ip", "address", "add", `${address}/24`, "dev", ifname]);
      await ns.exec(["ip", "link", "set", ifname, "up"]);
    },
  };
}

export interface Cluster {
  readonly members: readonly Member[];
  readonly endpoints: readonly string[];
  readonly certs: Certs;
  /** etcdctl in `ns` with the root client certificate (and `user` from the environment, if given). */
  etcdctl(
    ns: Netns,
    args: readonly string[],
    env?: Record<string, string>,
  ): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  kill(member: Member): Promise<void>;
  start(member: Member): Promise<void>;
  /** The member that leads now, by asking each live one. */
  leader(ns: Netns, env?: Record<string, string>): Promise<Member>;
  stop(): Promise<void>;
}

export async function startCluster(
  dir: string,
  segment: Segment,
  prefix: string,
  size = 3,
): Promise<Cluster> {
  const addresses = Array.from({ length: size }, (_, i) => memberAddress(i));
  const certs = await makeCerts(path.join(dir, "pki"), addresses);
  const root = await certs.client("root", true);
  const members: Member[] = [];
  for (let i = 0; i < size; i++) {
    const ns = await createNetns(`${prefix}e${i}`);
    await segment.join(ns, "eth0", memberAddress(i));
    members.push({ name: `m${i}`, ns, url: `https://${memberAddress(i)}:2379`, pid: undefined });
  }
  const initialCluster = members
    .map((m, i) => `${m.name}=https://${memberAddress(i)}:2380`)
    .join(",");
  const children = new Map<Member, ResultPromise>();
  const server = (f: string) => path.join(certs.dir, `etcd-member.${f}`);
  const start = async (m: Member) => {
    const i = members.indexOf(m);
    const a = memberAddress(i);
    const child = execa(
      "ip",
      [
        ...[
          "netns",
          "exec",
          m.ns.name,
          "etcd",
          "--name",
          m.name,
          "--data-dir",
          path.join(dir, m.name),
        ],
        ...[
          "--listen-client-urls",
          `https://${a}:2379`,
          "--advertise-client-urls",
          `https://${a}:2379`,
        ],
        ...[
          "--listen-peer-urls",
          `https://${a}:2380`,
          "--initial-advertise-peer-urls",
          `https://${a}:2380`,
        ],
        ...[
          "--initial-cluster",
          initialCluster,
          "--initial-cluster-state",
          "new",
          "--initial-cluster-token",
          prefix,
        ],
        ...[
          "--cert-file",
          server("crt"),
          "--key-file",
          server("key"),
          "--client-cert-auth",
          "--trusted-ca-file",
          certs.ca,
        ],
        ...[
          "--peer-cert-file",
          server("crt"),
          "--peer-key-file",
          server("key"),
          "--peer-client-cert-auth",
        ],
        ...[
          "--peer-trusted-ca-file",
          certs.ca,
          "--logger",
          "zap",
          "--log-outputs",
          path.join(dir, `${m.name}.log`),
        ],
      ],
      { stdin: "ignore", stdout: "ignore", stderr: "ignore", reject: false, cleanup: true },
    );
    children.set(m, child);
    m.pid = child.pid;
  };
  const etcdctl: Cluster["etcdctl"] = async (ns, args, env = {}) => {
    const r = await execa(
      "ip",
      [
        ...[
          "netns",
          "exec",
          ns.name,
          "etcdctl",
          "--endpoints",
          members.map((m) => m.url).join(","),
        ],
        ...[
          "--cacert",
          certs.ca,
          "--cert",
          root.cert,
          "--key",
          root.key,
          "--command-timeout",
          "5s",
          ...args,
        ],
      ],
      { reject: false, env: { ETCDCTL_API: "3", ...env }, stdin: "ignore" },
    );
    return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1 };
  };
  const kill = async (m: Member) => {
    const child = children.get(m);
    if (m.pid !== undefined) process.kill(m.pid, "SIGKILL");
    m.pid = undefined;
    await child;
  };
  await Promise.all(members.map(start));
  const cluster: Cluster = {
    members,
    endpoints: members.map((m) => m.url),
    certs,
    etcdctl,
    kill,
    start,
    async leader(ns, env) {
      let last = "";
      for (const giveUp = Date.now() + 30_000; Date.now() < giveUp; ) {
        const live = members.filter((x) => x.pid !== undefined);
        const r = await etcdctl(
          ns,
          ["--endpoints", live.map((m) => m.url).join(","), "endpoint", "status", "-w", "json"],
          env,
        );
        last = `${r.stdout}${r.stderr}`;
        // One entry per member; ids are 64-bit, so compared as the digits etcdctl prints.
        for (const entry of r.stdout.split('{"Endpoint":').slice(1)) {
          const url = /^"([^"]+)"/.exec(entry)?.[1];
          const id = /"member_id":(\d+)/.exec(entry)?.[1];
          const leads = /"leader":(\d+)/.exec(entry)?.[1];
          const member = live.find((m) => m.url === url);
          if (member && id && id === leads) return member;
        }
        await sleep(200);
      }
      throw new Error(`no etcd member leads; the last answer: ${last}`);
    },
    async stop() {
      for (const m of members) if (m.pid !== undefined) await kill(m);
      for (const m of members) await m.ns.destroy();
    },
  };
  return cluster;
}
