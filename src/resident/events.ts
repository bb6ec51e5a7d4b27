/**
 * What the resident process says happened, as it happens: `netpol watch --json` prints each
 * event as one line, the dashboard streams them, metrics count them. An event is plain JSON,
 * named by its `event` field; fields are only ever added.
 */
export type ResidentEvent =
  /** The resident is up: it holds the policy in force and follows the kernel's events. */
  | { readonly event: "watching"; readonly netns?: string }
  /** A link came, went, or went up or down (from the kernel's own report). */
  | { readonly event: "link"; readonly name: string; readonly up: boolean; readonly gone: boolean }
  /**
   * A change computed ahead, carried out for an event it was made for (a device came back:
   * its routes), in `ms` from the event; a reconcile confirms it afterwards.
   */
  | {
      readonly event: "reaction";
      readonly trigger: string;
      readonly changes: number;
      readonly ms: number;
    }
  /**
   * A reconcile found the site as the policy says after a reaction; `processes` is how many
   * the reaction and its confirmation started between them.
   */
  | { readonly event: "confirmed"; readonly after: string; readonly processes: number }
  /** An apply through the resident changed the site. */
  | {
      readonly event: "applied";
      readonly changes: number;
      readonly by: string;
      /** The first changes, as a plan lists them (`+ route …`). */
      readonly what: readonly string[];
    }
  /** Something the operator should know: an interrupted apply finished, a revert. */
  | { readonly event: "note"; readonly note: string }
  /** A reconcile or reaction failed; the resident tries again. */
  | { readonly event: "error"; readonly code: string; readonly message: string };

export type Stamped = ResidentEvent & { readonly time: string };

export type Listener = (event: Stamped) => void;

/**
 * Hands each event to every listener, in the order they came, stamped with the time. A
 * listener that throws is dropped from this event only: one bad subscriber (a closed stream)
 * does not silence the others.
 */
export class EventBus {
  private readonly listeners = new Set<Listener>();

  constructor(private readonly clock: () => Date = () => new Date()) {}

  /** Subscribes; the function returned unsubscribes. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(event: ResidentEvent): void {
    const stamped: Stamped = { time: this.clock().toISOString(), ...event };
    for (const listener of this.listeners) {
      try {
        listener(stamped);
      } catch {
        // As said above: the others still hear it.
      }
    }
  }
}
