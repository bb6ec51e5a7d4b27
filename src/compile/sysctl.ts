import type { Intent, SiteIntent } from "../policy/intent.js";

/** Kernel settings a site needs: forwarding where it routes for others, loose rp_filter for marked replies. */
export function compileSysctls(intent: Intent, site: SiteIntent): [string, string][] {
  const forwards =
    site.egress.length > 0 ||
    site.tunnels.length > 0 ||
    intent.services.some((s) => s.publishOn === site.name);
  // IPv6 is forwarded where the site has an IPv6 network or publishes an IPv6 target.
  const hasV6 =
    site.networks.some((n) => n.cidr.family === 6) ||
    intent.services.some((s) => s.publishOn === site.name && s.target.address.family === 6);
  const out: [string, string][] = [];
  if (forwards) {
    out.push(["net.ipv4.ip_forward", "1"]);
    if (hasV6) out.push(["net.ipv6.conf.all.forwarding", "1"]);
    // Forwarding turns off router advertisements on every link; the uplink still needs them.
    if (hasV6 && site.wan) out.push([`net.ipv6.conf.${sysctlName(site.wan)}.accept_ra`, "2"]);
  }
  // A client address arriving through the tunnel routes back via the WAN in main: strict
  // reverse-path filtering would drop it before the connection mark can steer the reply.
  // Likewise replies arriving through any egress path: egress is routed by packet marks, and
  // the kernel's reverse-path lookup sees no mark. External devices (OpenVPN's tun) come and
  // go: OpenVPN recreates its device at every reconnect with `default`'s value, so `default`
  // is loose too wherever one is a path; the device's own key waits while it is absent.
  // Loops, not flatMap: a site may have 10,000 egresses, most through the same device.
  let external = false;
  const loose = new Set(site.replyPaths.map((r) => r.device));
  for (const e of site.egress) {
    for (const via of e.paths) {
      loose.add(via.device);
      if (via.kind === "device") external = true;
    }
  }
  if (external) out.push([RP_DEFAULT, "2"]);
  for (const device of [...loose].sort())
    out.push([`net.ipv4.conf.${sysctlName(device)}.rp_filter`, "2"]);
  return out;
}

const RP_DEFAULT = "net.ipv4.conf.default.rp_filter";

/** The device a `net.ipv{4,6}.conf.DEVICE.*` key is about; undefined for `all`, `default`, the rest. */
export function sysctlDevice(key: string): string | undefined {
  const device = /^net\.ipv[46]\.conf\.([^.]+)\./.exec(key)?.[1];
  return device === undefined || device === "all" || device === "default"
    ? undefined
    : device.replaceAll("/", ".");
}

/** sysctl's own notation: a '.' inside an interface name is written '/'. */
function sysctlName(device: string): string {
  return device.replaceAll(".", "/");
}
