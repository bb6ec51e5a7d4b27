/**
 * Hands out routing table ids and rule priorities: explicit ones are checked for clashes,
 * the rest are chosen in order from a start value, skipping whatever is taken.
 */
export class IdAllocator {
  private readonly taken = new Map<number, string>();

  constructor(private next: number) {}

  /** Claims `span` consecutive ids from `first`; returns the owner already holding one, if any. */
  claim(first: number, span: number, owner: string): string | undefined {
    for (let id = first; id < first + span; id++) {
      const holder = this.taken.get(id);
      if (holder !== undefined) return holder;
    }
    for (let id = first; id < first + span; id++) this.taken.set(id, owner);
    return undefined;
  }

  /** The next `span` free consecutive ids. */
  allocate(span: number, owner: string): number {
    const first = this.allocateFrom(this.next, span, owner);
    this.next = first + span;
    return first;
  }

  /** The first `span` free consecutive ids at or after `start`. */
  allocateFrom(start: number, span: number, owner: string): number {
    let first = start;
    while (this.claim(first, span, owner) !== undefined) first++;
    return first;
  }
}
