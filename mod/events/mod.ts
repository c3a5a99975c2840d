/**
 * Typed event bus. Modules publish; the journal (a synchronous sink) makes each
 * event durable before `publish` returns, then async subscribers (SSE, alerts, HA)
 * are told.
 *
 * Every event kind and its payload type is declared by the module that publishes it,
 * in its `events.ts`, by adding to {@link EventMap} (TypeScript declaration merging), so
 * the bus knows every kind without a central list. Kinds are named
 * `<module>.<snake_case>`: `storage.array_degraded`, `bypass.mode_changed`.
 *
 * @example
 * ```ts
 * // mod/storage/events.ts
 * import type {} from "../events/mod.ts";
 * declare module "../events/mod.ts" {
 *   interface EventMap {
 *     "storage.array_degraded": { array: string; missing: number };
 *   }
 * }
 * ```
 * @module
 */
import { z } from "zod";

/** Severities, lowest first (syslog-like). */
export const SEVERITIES = ["debug", "info", "notice", "warning", "error", "critical"] as const;
/** One severity. */
export type Severity = typeof SEVERITIES[number];
/** Zod schema of a severity. */
export const severitySchema: z.ZodType<Severity> = z.enum(SEVERITIES);

/** Numeric rank of a severity (debug = 0). */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** JSON-serialisable payload of an event. */
export type Payload = Record<string, unknown>;

/**
 * Every event kind → its payload type. Empty here: each module's `events.ts` adds its
 * kinds with `declare module "../events/mod.ts" { interface EventMap { ... } }`.
 */
// deno-lint-ignore no-empty-interface
export interface EventMap {}

/** A declared event kind. */
export type EventKind = keyof EventMap & string;

/** What a publisher hands to the bus for a declared kind: the payload type follows the kind. */
export interface TypedEventInput<K extends EventKind> {
  /** Publishing module (the kind's prefix). */
  module: string;
  /** Event kind. */
  kind: K;
  /** Severity (default `info`). */
  severity?: Severity;
  /** Details, typed by the kind. */
  payload: EventMap[K];
  /** Override the time (tests, replay). */
  time?: number;
}

/** An event as stored and delivered. `id` is assigned by the journal. */
export interface KwEvent<P extends Payload = Payload> {
  /** Journal id (monotonic); 0 when no journal is attached. */
  id: number;
  /** Milliseconds since the epoch. */
  time: number;
  /** Publishing module, e.g. `runtime`, `supervisor`, `bypass`. */
  module: string;
  /** Kind, dotted, starting with the module: `runtime.started`. */
  kind: string;
  /** Severity. */
  severity: Severity;
  /** Details. */
  payload: P;
}

/** What a publisher hands to the bus. */
export interface EventInput<P extends Payload = Payload> {
  /** Publishing module. */
  module: string;
  /** Event kind. */
  kind: string;
  /** Severity (default `info`). */
  severity?: Severity;
  /** Details (default `{}`). */
  payload?: P;
  /** Override the time (tests, replay). */
  time?: number;
}

/** A synchronous durable sink: returns the id it stored the event under. */
export interface Journal {
  /** Store the event durably and return its id. */
  append(e: Omit<KwEvent, "id">): number;
}

/** A subscriber callback. Exceptions are caught and logged, never propagated. */
export type Subscriber = (e: KwEvent) => void;

/** Filter for subscribers. */
export interface EventFilter {
  /** Only these modules. */
  module?: string;
  /** Kind prefix, e.g. `supervisor.` */
  kindPrefix?: string;
  /** Minimum severity. */
  minSeverity?: Severity;
}

/** Does an event pass a filter? */
export function matches(e: KwEvent, f: EventFilter): boolean {
  if (f.module && e.module !== f.module) return false;
  if (f.kindPrefix && !e.kind.startsWith(f.kindPrefix)) return false;
  if (f.minSeverity && severityRank(e.severity) < severityRank(f.minSeverity)) return false;
  return true;
}

/** The event bus. */
export class EventBus {
  #journal: Journal | undefined;
  #subs = new Set<{ fn: Subscriber; filter: EventFilter }>();
  #now: () => number;
  #sampler: ((e: EventInput) => boolean) | undefined;
  /** Journal writes that failed (the event was still delivered to subscribers). */
  journalErrors = 0;
  /** Time of the last failed journal write (ms), or 0. */
  lastJournalErrorAt = 0;
  /** Count of events published since start, by severity. */
  readonly counts: Record<Severity, number> = {
    debug: 0,
    info: 0,
    notice: 0,
    warning: 0,
    error: 0,
    critical: 0,
  };

  /** Create a bus; `now` is the injected clock. */
  constructor(opts: { journal?: Journal; now?: () => number } = {}) {
    this.#journal = opts.journal;
    this.#now = opts.now ?? Date.now;
  }

  /** Attach (or replace) the durable journal. */
  attachJournal(j: Journal | undefined): void {
    this.#journal = j;
  }

  /**
   * Install a sampler: when it returns false for an event, the event is dropped
   * (used by the load governor to sample debug events under pressure).
   */
  setSampler(fn: ((e: EventInput) => boolean) | undefined): void {
    this.#sampler = fn;
  }

  /**
   * Publish a declared event. When this returns, the journal has stored it (it
   * survives a kill -9 of the process) — unless the journal failed, which
   * `journalErrors` counts and store health reports (the event then has id 0).
   * Returns the event, or null when sampled out.
   */
  publish<K extends EventKind>(input: TypedEventInput<K>): KwEvent | null {
    return this.publishUntyped(input as unknown as EventInput);
  }

  /**
   * Publish a kind that is not declared in {@link EventMap}: tests, and events that
   * arrive from elsewhere (a peer's journal). Modules publish their own kinds with
   * {@link publish}.
   */
  publishUntyped<P extends Payload>(input: EventInput<P>): KwEvent<P> | null {
    if (this.#sampler && !this.#sampler(input as EventInput)) return null;
    const base = {
      time: input.time ?? this.#now(),
      module: input.module,
      kind: input.kind,
      severity: input.severity ?? "info",
      payload: (input.payload ?? {}) as P,
    };
    let id = 0;
    if (this.#journal) {
      try {
        id = this.#journal.append(base);
      } catch (err) {
        // A broken journal must not take the publisher down: the event still reaches
        // subscribers (UI, alerts), store health turns red, and the failure is counted.
        this.journalErrors++;
        this.lastJournalErrorAt = this.#now();
        if (this.journalErrors === 1 || this.journalErrors % 1000 === 0) {
          console.error(`event journal write failed (${this.journalErrors}x): ${err}`);
        }
      }
    }
    const e: KwEvent<P> = { id, ...base };
    this.counts[e.severity]++;
    for (const s of this.#subs) {
      if (!matches(e, s.filter)) continue;
      try {
        s.fn(e);
      } catch (err) {
        console.error(`event subscriber failed on ${e.kind}:`, err);
      }
    }
    return e;
  }

  /** Subscribe; returns an unsubscribe function. */
  subscribe(fn: Subscriber, filter: EventFilter = {}): () => void {
    const entry = { fn, filter };
    this.#subs.add(entry);
    return () => this.#subs.delete(entry);
  }

  /** Number of live subscribers (for status and tests). */
  get subscriberCount(): number {
    return this.#subs.size;
  }
}
