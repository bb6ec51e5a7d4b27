/**
 * Hands out routing table ids and rule priorities: explicit ones are checked for clashes,
 * the rest are chosen in order from a start value, skipping whatever is taken, including the
 * ids the kernel keeps for itself.
 */
export class IdAllocator {
  /** Made on the first claim: most of a hub's 10,000 spokes hand out no id at all. */
  private taken: Map<number, string> | undefined;

  constructor(
    private next: number,
    /** The largest id there is to give. */
    private readonly max: number,
    /** Ids the kernel uses: main, local and default tables, or its built-in rules. */
    private readonly kernel: ReadonlySet<number>,
  ) {}

  /** Claims `span` consecutive ids from `first`; returns who already holds one, if anyone. */
  claim(first: number, span: number, owner: string): string | undefined {
    for (let id = first; id < first + span; id++) {
      if (id > this.max || this.kernel.has(id)) return "the kernel";
      const holder = this.taken?.get(id);
      if (holder !== undefined) return holder;
    }
    this.taken ??= new Map();
    for (let id = first; id < first + span; id++) this.taken.set(id, owner);
    return undefined;
  }

  /** The next `span` free consecutive ids, or undefined when none are left below the maximum. */
  allocate(span: number, owner: string): number | undefined {
    const first = this.allocateFrom(this.next, span, owner);
    if (first !== undefined) this.next = first + span;
    return first;
  }

  /** The first `span` free consecutive ids at or after `start`. */
  allocateFrom(start: number, span: number, owner: string): number | undefined {
    for (let first = start; first + span - 1 <= this.max; first++) {
      if (this.claim(first, span, owner) === undefined) return first;
    }
    return undefined;
  }
}

export const KERNEL_TABLES: ReadonlySet<number> = new Set([0, 253, 254, 255]);
export const MAX_TABLE = 0xfffffffe;
/** 32766 and 32767 are the kernel's main and default rules. */
export const MAX_PRIORITY = 32765;
export const KERNEL_PRIORITIES: ReadonlySet<number> = new Set([0]);
