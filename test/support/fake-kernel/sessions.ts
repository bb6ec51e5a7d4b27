import { formatAddress, formatCidr } from "../../../src/net/cidr.js";
import type { Session } from "../../../src/system/session.js";
import { hasCarrier } from "./links.js";
import type {
  FakeAddress,
  FakeLink,
  FakeRoute,
  FakeRule,
  KernelState,
  ToolResult,
} from "./state.js";

/**
 * The long-lived tools on the fake kernel: `ip -o monitor`, fed the changes each command makes
 * in the format the real one prints, and `ip -batch -` on a pipe, each line run as it comes.
 * Output reaches the listeners on a later turn of the event loop, as a pipe's would.
 */

type Lines = (line: string) => void;

/** A session whose output the fake hands out itself. */
export class FakeSession implements Session {
  private readonly out: Lines[] = [];
  private readonly err: Lines[] = [];
  private ended: ((code: number | undefined) => void) | undefined;
  readonly exited: Promise<number | undefined>;

  constructor(
    private readonly input: (session: FakeSession, text: string) => void = () => undefined,
    private readonly onStop: () => void = () => undefined,
  ) {
    this.exited = new Promise((settle) => {
      this.ended = settle;
    });
  }

  get running(): boolean {
    return this.ended !== undefined;
  }

  write(text: string): void {
    if (this.running) this.input(this, text);
  }
  onLine(listener: Lines): void {
    this.out.push(listener);
  }
  onErrorLine(listener: Lines): void {
    this.err.push(listener);
  }
  stop(): void {
    this.exit(undefined);
  }

  /** Hands the tool's output on, after whatever is already under way. */
  print(stdout: string, stderr = ""): void {
    const lines = (text: string) =>
      text.split("\n").filter((l, i, all) => l !== "" || i < all.length - 1);
    const out = lines(stdout);
    const err = lines(stderr);
    setImmediate(() => {
      for (const l of err) for (const f of this.err) f(l);
      for (const l of out) for (const f of this.out) f(l);
    });
  }

  exit(code: number | undefined): void {
    const ended = this.ended;
    if (!ended) return;
    this.ended = undefined;
    this.onStop();
    setImmediate(() => ended(code));
  }
}

/**
 * `ip [options] -batch -` on a pipe: each line runs as it arrives. As in iproute2, the first
 * failing line (without -force) ends the process, with the line number it had in the stream.
 */
export function batchSession(run: (line: string) => ToolResult, force: boolean): FakeSession {
  let held = "";
  let number = 0;
  return new FakeSession((session, text) => {
    const lines = (held + text).split("\n");
    held = lines.pop() ?? "";
    for (const line of lines) {
      if (!session.running) return;
      number++;
      const r = run(line);
      const stderr = r.stderr.replace(/Command failed -:1$/m, `Command failed -:${number}`);
      session.print(r.stdout, stderr);
      if (r.exitCode !== 0 && !force) session.exit(r.exitCode);
    }
  });
}

/** What ip monitor compares: the routing part of the state, copied. */
export type Routing = Pick<KernelState, "links" | "addresses" | "routes" | "rules">;

export function routingOf(state: KernelState): Routing {
  return structuredClone({
    links: state.links,
    addresses: state.addresses,
    routes: state.routes,
    rules: state.rules,
  });
}

function linkLine(state: KernelState, l: FakeLink): string {
  const tun = l.kind === "tun";
  const flags = tun ? ["POINTOPOINT", "MULTICAST", "NOARP"] : ["BROADCAST", "MULTICAST"];
  const carrier = hasCarrier(state, l);
  if (l.up && !carrier) flags.unshift("NO-CARRIER");
  if (l.up) flags.push("UP");
  if (carrier) flags.push("LOWER_UP");
  const name = l.link !== undefined && l.kind === "veth" ? `${l.name}@${l.link}` : l.name;
  const hw = tun ? "link/none " : "link/ether 02:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff";
  const operstate = carrier ? "UP" : l.up ? "LOWERLAYERDOWN" : "DOWN";
  return `${l.index}: ${name}: <${flags.join(",")}> mtu ${l.mtu} qdisc noqueue state ${operstate} group default \\    ${hw}`;
}

function addressLine(state: KernelState, a: FakeAddress): string {
  const index = state.links.find((l) => l.name === a.device)?.index ?? 0;
  const inet = a.cidr.family === 4 ? "inet" : "inet6";
  return `${index}: ${a.device}    ${inet} ${formatAddress(a.cidr)}/${a.cidr.prefix} scope global ${a.device}\\       valid_lft forever preferred_lft forever`;
}

function routeLine(r: FakeRoute): string {
  const dst = r.dst.prefix === 0 ? "default" : formatCidr(r.dst);
  const type = r.type === "unicast" ? "" : `${r.type} `;
  const dev = r.dev !== undefined ? ` dev ${r.dev}` : "";
  const metric = r.metric !== 0 ? ` metric ${r.metric}` : "";
  return `${type}${dst}${dev} table ${r.table} proto ${r.protocol}${metric} `;
}

function ruleLine(r: FakeRule): string {
  const from = r.src ? formatCidr(r.src) : "all";
  const mark = r.fwmark !== undefined ? ` fwmark 0x${r.fwmark.toString(16)}` : "";
  return `${r.priority}:\tfrom ${from}${mark} lookup ${r.table} proto ${r.protocol}`;
}

/**
 * The lines `ip -o monitor link address route rule` prints for the change from `before` to
 * `now`. Like the kernel, it says nothing of the IPv4 routes that went with a device that went
 * down or away: only those deleted by a command.
 */
export function monitorLines(before: Routing, now: KernelState): string[] {
  const lines: string[] = [];
  const key = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? `${v}` : v));
  const diff = <T>(
    a: readonly T[],
    b: readonly T[],
    line: (x: T) => string,
    silent?: (x: T) => boolean,
  ) => {
    const had = new Set(a.map(key));
    const has = new Set(b.map(key));
    for (const x of a) if (!has.has(key(x)) && !silent?.(x)) lines.push(`Deleted ${line(x)}`);
    for (const x of b) if (!had.has(key(x))) lines.push(line(x));
  };
  const was = new Map(before.links.map((l) => [l.index, l]));
  for (const l of now.links) {
    const old = was.get(l.index);
    if (!old || key(old) !== key(l)) lines.push(linkLine(now, l));
  }
  const kept = new Set(now.links.map((l) => l.index));
  for (const l of before.links)
    if (!kept.has(l.index)) lines.push(`Deleted ${linkLine(now, { ...l, up: false })}`);
  diff(before.addresses, now.addresses, (a) => addressLine(now, a));
  const upNow = new Set(now.links.filter((l) => l.up).map((l) => l.name));
  diff(
    before.routes,
    now.routes,
    routeLine,
    (r) => r.family === 4 && r.dev !== undefined && !upNow.has(r.dev),
  );
  diff(before.rules, now.rules, ruleLine);
  return lines;
}
