import { isTraceId } from '../common/primitives.js';
import { ERROR_CATALOG, type ErrorCategory, type ErrorCode } from '../eps/v1/catalog.js';
import type { EpsError } from '../eps/v1/schema.js';

/** EPS v1 length limits (see EpsErrorSchema); toJSON clips to them so its output always validates. */
const MAX_MESSAGE_LENGTH = 4096;
const MAX_COMPONENT_LENGTH = 128;
const MAX_NODE_LENGTH = 255;
const MAX_ACTION_LENGTH = 64;

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/** Where an error arose, in EPS terms. */
export interface RuneErrorSource {
  /** The component that raised the error: rune-core, rune-cli, transport-ssh, plugin:<name>, ... */
  component: string;
  /** The node the error concerns, if any. */
  node?: string;
  /** The action the error concerns, if any. */
  action?: string;
}

/** Options of {@link RuneError}. */
export interface RuneErrorOptions {
  /** Structured facts for machines (violations, fingerprints, exit codes, ...). */
  details?: Record<string, unknown>;
  /** The underlying error (from ssh2, the AWS SDK, the file system, ...). Never serialized. */
  cause?: unknown;
  /** Overrides the catalog's default retryability. */
  retryable?: boolean;
  /** Where the error arose; defaults to `{ component: 'rune' }`. */
  source?: RuneErrorSource;
  /** The trace id of the run; serialized as {@link UNTRACED_TRACE_ID} when absent or malformed. */
  traceId?: string;
  /** Defaults to now. */
  timestamp?: Date;
}

/** The trace id used when an error is serialized before any trace exists (e.g. argument parsing). */
export const UNTRACED_TRACE_ID = 'ffffffffffffffffffffffffffffffff';

/**
 * The one error class of RUNE. Every error that crosses a package boundary is a RuneError whose
 * `code` is in the EPS catalog; `toJSON()` gives the EPS v1 wire shape.
 */
export class RuneError extends Error {
  override readonly name = 'RuneError';
  /** The EPS catalog code. */
  readonly code: ErrorCode;
  /** The code's category, from the catalog. */
  readonly category: ErrorCategory;
  /** Whether retrying the same request may succeed. */
  readonly retryable: boolean;
  /** Structured facts for machines. */
  readonly details: Record<string, unknown> | undefined;
  /** Where the error arose. */
  readonly source: RuneErrorSource;
  /** The trace id of the run, when known. */
  readonly traceId: string | undefined;
  /** When the error arose. */
  readonly timestamp: Date;

  constructor(code: ErrorCode, message: string, options: RuneErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = ERROR_CATALOG[code];
    this.code = code;
    this.category = entry.category;
    this.retryable = options.retryable ?? entry.retryable;
    this.details = options.details;
    this.source = options.source ?? { component: 'rune' };
    this.traceId = options.traceId;
    this.timestamp = options.timestamp ?? new Date();
  }

  /** The CLI exit code for this error, from the catalog. */
  get exitCode(): number {
    return ERROR_CATALOG[this.code].exitCode;
  }

  /** A copy with more context (node, action, trace id, details); existing values are kept unless given. */
  withContext(context: {
    node?: string;
    action?: string;
    component?: string;
    traceId?: string;
    details?: Record<string, unknown>;
  }): RuneError {
    const source: RuneErrorSource = { ...this.source };
    if (context.component !== undefined) source.component = context.component;
    if (context.node !== undefined) source.node = context.node;
    if (context.action !== undefined) source.action = context.action;
    return new RuneError(this.code, this.message, {
      details:
        context.details === undefined ? this.details : { ...this.details, ...context.details },
      cause: this.cause,
      retryable: this.retryable,
      source,
      traceId: context.traceId ?? this.traceId,
      timestamp: this.timestamp,
    });
  }

  /**
   * The EPS v1 wire shape. Always valid against EpsErrorSchema: an empty message becomes the
   * catalog description, over-long strings are clipped, a malformed trace id becomes
   * {@link UNTRACED_TRACE_ID} and an invalid timestamp becomes the time of serialization, because
   * an error report that fails validation would hide the error it reports.
   */
  toJSON(): EpsError {
    const source: EpsError['source'] = {
      component: clip(this.source.component || 'rune', MAX_COMPONENT_LENGTH),
    };
    if (this.source.node) source.node = clip(this.source.node, MAX_NODE_LENGTH);
    if (this.source.action) source.action = clip(this.source.action, MAX_ACTION_LENGTH);
    const time = Number.isNaN(this.timestamp.getTime()) ? new Date() : this.timestamp;
    const json: EpsError = {
      code: this.code,
      category: this.category,
      message: clip(this.message || ERROR_CATALOG[this.code].description, MAX_MESSAGE_LENGTH),
      retryable: this.retryable,
      source,
      trace_id: isTraceId(this.traceId) ? this.traceId : UNTRACED_TRACE_ID,
      timestamp: time.toISOString(),
    };
    if (this.details !== undefined) json.details = this.details;
    return json;
  }

  /** True for RuneError instances, also across duplicated module copies. */
  static is(value: unknown): value is RuneError {
    return (
      value instanceof RuneError ||
      (value instanceof Error &&
        value.name === 'RuneError' &&
        typeof (value as RuneError).code === 'string')
    );
  }

  /**
   * Wraps anything thrown into a RuneError. A RuneError (also one from another copy of this
   * package) passes through unchanged; anything else becomes a new `fallback` error
   * (INTERNAL_ERROR unless given) carrying the thrown value as `cause`, its message (or
   * `unexpected error`), and `options` — e.g. the source component or trace id of the place that
   * caught it, which a passing-through RuneError keeps as they were.
   */
  static from(
    value: unknown,
    fallback: ErrorCode = 'INTERNAL_ERROR',
    options: Omit<RuneErrorOptions, 'cause'> = {},
  ): RuneError {
    if (RuneError.is(value)) return value;
    const message = value instanceof Error ? value.message : String(value);
    return new RuneError(fallback, message || 'unexpected error', { ...options, cause: value });
  }
}
