import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { adoptPid, type Lab } from "../../src/lab/lab.js";
import { startInNetns } from "../../src/lab/processes.js";
import { ADDR } from "../../src/lab/topology.js";

/**
 * Pebble, Let's Encrypt's test ACME server, on the lab's internet host (www), with
 * pebble-challtestsrv as the DNS server it resolves names with: every name points at the VPS
 * unless `pointAt` says otherwise. Pebble serves its API with a certificate from a CA made here
 * (`listenerCa`, what Caddy is told to trust) and issues from a root it makes at start (`root`,
 * all a client that trusts only Pebble trusts). Both processes are the lab's to stop.
 */
export interface Pebble {
  readonly directory: string;
  readonly listenerCa: string;
  readonly root: string;
  pointAt(name: string, address: string): Promise<void>;
}

const DNS = `${ADDR.www}:8053`;
const CHALLTEST_API = "http://127.0.0.1:8055";

async function inWww(lab: Lab, argv: string[]): Promise<string> {
  const r = await execa("ip", ["netns", "exec", lab.names.ns("www"), ...argv]);
  return r.stdout;
}

async function openssl(args: string[]): Promise<void> {
  await execa("openssl", args);
}

/** A CA, and a certificate from it for Pebble's own listener at the www address. */
async function listenerCertificate(
  dir: string,
): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string) => path.join(dir, name);
  await openssl([
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...[
      "-keyout",
      f("ca.key"),
      "-out",
      f("listener-ca.pem"),
      "-days",
      "2",
      "-subj",
      "/CN=lab Pebble listener CA",
    ],
  ]);
  await openssl([
    ...["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-keyout", f("listener.key"), "-out", f("listener.csr"), "-subj", "/CN=pebble"],
  ]);
  await writeFile(f("san.cnf"), `subjectAltName=IP:${ADDR.www}\n`);
  await openssl([
    ...[
      "x509",
      "-req",
      "-in",
      f("listener.csr"),
      "-CA",
      f("listener-ca.pem"),
      "-CAkey",
      f("ca.key"),
    ],
    ...["-CAcreateserial", "-out", f("listener.pem"), "-days", "2", "-extfile", f("san.cnf")],
  ]);
  return { ca: f("listener-ca.pem"), cert: f("listener.pem"), key: f("listener.key") };
}

export async function startPebble(lab: Lab): Promise<Pebble> {
  const dir = path.join(lab.dir, "pebble");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tls = await listenerCertificate(dir);
  const config = path.join(dir, "pebble.json");
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `${ADDR.www}:14000`,
        managementListenAddress: `${ADDR.www}:15000`,
        certificate: tls.cert,
        privateKey: tls.key,
        // Validations go to the ports real CAs use.
        httpPort: 80,
        tlsPort: 443,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const www = lab.names.ns("www");
  await adoptPid(
    lab.dir,
    startInNetns(www, [
      "pebble-challtestsrv",
      ...[
        "-defaultIPv4",
        ADDR.vps,
        "-defaultIPv6",
        "",
        "-dns01",
        DNS,
        "-management",
        "127.0.0.1:8055",
      ],
      ...["-http01", "", "-https01", "", "-tlsalpn01", ""],
    ]),
  );
  await adoptPid(
    lab.dir,
    startInNetns(www, ["pebble", "-config", config, "-dnsserver", DNS], {
      // No random sleeps before validations, no nonces refused at random: a test waits for
      // Caddy, not for Pebble's chaos.
      PEBBLE_VA_NOSLEEP: "1",
      PEBBLE_WFE_NONCEREJECT: "0",
    }),
  );
  const directory = `https://${ADDR.www}:14000/dir`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await execa(
      "ip",
      ["netns", "exec", www, "curl", "-sf", "--cacert", tls.ca, directory],
      { reject: false },
    );
    if (r.exitCode === 0) break;
    if (Date.now() > deadline) throw new Error(`Pebble did not answer at ${directory} within 10 s`);
    await sleep(100);
  }
  const root = path.join(dir, "root.pem");
  await writeFile(
    root,
    await inWww(lab, ["curl", "-sf", "--cacert", tls.ca, `https://${ADDR.www}:15000/roots/0`]),
  );
  return {
    directory,
    listenerCa: tls.ca,
    root,
    async pointAt(name, address) {
      await inWww(lab, [
        ...["curl", "-sf", "-d", JSON.stringify({ host: `${name}.`, addresses: [address] })],
        `${CHALLTEST_API}/add-a`,
      ]);
    },
  };
}

/** The serial of the certificate `ns` is served for `name` at `address`:443, verified or not. */
export async function servedSerial(ns: string, address: string, name: string): Promise<string> {
  const r = await execa(
    "ip",
    [
      ...["netns", "exec", ns, "openssl", "s_client", "-connect", `${address}:443`],
      ...["-servername", name],
    ],
    { input: "", reject: false },
  );
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  if (!pem) return "";
  const x = await execa("openssl", ["x509", "-noout", "-serial"], { input: pem });
  return x.stdout.replace(/^serial=/, "").trim();
}

export const readPem = (file: string) => readFile(file, "utf8");
