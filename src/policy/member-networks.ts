import { type Cidr, type Family, makeCidr, networkOf } from "../net/cidr.js";
import type { Address, MemberIntent, NetworkIntent, TunnelIntent } from "./intent.js";

/** The network, if any, of a site that holds an address. */
export type NetworkHolding = (site: string, address: Address) => NetworkIntent | undefined;

/**
 * For one tunnel, which members' sites declare networks holding an address, in member order.
 * Asking every member in turn made n published ports across n spokes quadratic; here the
 * networks are keyed by prefix, so a query looks up one key per prefix length in use.
 */
export class MemberNetworks {
  /** `family prefix network` → indices of the members whose site declares it, ascending. */
  private readonly holders = new Map<string, number[]>();
  private readonly lengths: { family: Family; prefix: number }[] = [];

  constructor(
    private readonly tunnel: TunnelIntent,
    networksOf: (site: string) => readonly NetworkIntent[],
  ) {
    const lengths = new Set<string>();
    tunnel.members.forEach((m, idx) => {
      for (const { cidr } of networksOf(m.site)) {
        const key = keyOf(networkOf(cidr));
        const list = this.holders.get(key);
        // A site declaring one prefix twice (reported elsewhere) still lists its member once.
        if (list === undefined) this.holders.set(key, [idx]);
        else if (list.at(-1) !== idx) list.push(idx);
        const length = `${cidr.family} ${cidr.prefix}`;
        if (!lengths.has(length)) {
          lengths.add(length);
          this.lengths.push({ family: cidr.family, prefix: cidr.prefix });
        }
      }
    });
  }

  /**
   * The first member, other than `site`'s own, whose site has a network holding `address`
   * (as `networkHolding` tells), with that network: the same answer as asking every member in
   * member order.
   */
  first(
    site: string,
    address: Address,
    networkHolding: NetworkHolding,
  ): { member: MemberIntent; network: NetworkIntent } | undefined {
    const lists = this.lengths
      .filter((l) => l.family === address.family)
      .map(
        (l) =>
          this.holders.get(keyOf(networkOf(makeCidr(address.family, address.address, l.prefix)))) ??
          [],
      );
    // Merge the ascending lists, smallest member index first, until a member's site answers.
    const cursors = lists.map((list) => ({ list, at: 0 }));
    for (;;) {
      let idx: number | undefined;
      for (const c of cursors) {
        const head = c.list[c.at];
        if (head !== undefined && (idx === undefined || head < idx)) idx = head;
      }
      if (idx === undefined) return undefined;
      for (const c of cursors) if (c.list[c.at] === idx) c.at++;
      const member = this.tunnel.members[idx] as MemberIntent;
      if (member.site === site) continue;
      const network = networkHolding(member.site, address);
      if (network) return { member, network };
    }
  }
}

const keyOf = (net: Cidr) => `${net.family} ${net.prefix} ${net.address}`;
