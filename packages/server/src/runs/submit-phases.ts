/**
 * Where one submission's time goes, for the benchmark (bench/server.mjs): off unless a recorder
 * is set, and then a handful of `performance.now()` calls per request. The phases follow the
 * path of a dry run: `pre` (from Fastify's onRequest to the route handler: body parsing, the
 * token lookup, the rate limit, schema validation), `plan` (planning and the policy decision),
 * `audit` (until the audit records are durable), `store` (until the run's row is committed) and
 * `reply` (from the handler's return until the answer was handed to the socket).
 */
import { performance } from 'node:perf_hooks';

/** The phases of one submission, in milliseconds. */
export interface SubmitPhases {
  pre: number;
  plan: number;
  audit: number;
  store: number;
  reply: number;
  total: number;
}

/** Marks the end of each phase of one submission. */
export interface SubmitPhaseClock {
  mark(phase: 'plan' | 'audit' | 'store'): void;
  /** The handler returned; the phase `reply` ends when `done` is called. */
  handled(): void;
  done(): void;
}

let recorder: ((phases: SubmitPhases) => void) | undefined;

/** Sets (or, with undefined, clears) the function that receives each submission's phases. */
export function recordSubmitPhases(receive: ((phases: SubmitPhases) => void) | undefined): void {
  recorder = receive;
}

/** A clock for one submission whose handler started `elapsedMs` after the request arrived, or undefined when nobody records. */
export function submitPhaseClock(elapsedMs: number): SubmitPhaseClock | undefined {
  const receive = recorder;
  if (receive === undefined) return undefined;
  const start = performance.now();
  const marks: Record<string, number> = {};
  let handled = start;
  return {
    mark(phase) {
      marks[phase] = performance.now();
    },
    handled() {
      handled = performance.now();
    },
    done() {
      const end = performance.now();
      const plan = marks.plan ?? start;
      const audit = marks.audit ?? plan;
      const store = marks.store ?? audit;
      receive({
        pre: elapsedMs,
        plan: plan - start,
        audit: audit - plan,
        store: store - audit,
        reply: end - handled,
        total: elapsedMs + (end - start),
      });
    },
  };
}
