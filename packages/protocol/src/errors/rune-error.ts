import { ERROR_CATALOG, type ErrorCategory, type ErrorCode } from '../eps/v1/catalog.js';
import type { EpsError } from '../eps/v1/schema.js';

/** Where an error arose, in EPS terms. */
export interface RuneErrorSource {
  component: string;
  node?: string;
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
  source?: RuneErrorSource;
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
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  readonly source: RuneErrorSource;
  readonly traceId: string | undefined;
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

  /** The EPS v1 wire shape. */
  toJSON(): EpsError {
    const json: EpsError = {
      code: this.code,
      category: this.category,
      message: this.message,
      retryable: this.retryable,
      source: { ...this.source },
      trace_id: this.traceId ?? UNTRACED_TRACE_ID,
      timestamp: this.timestamp.toISOString(),
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

  /** Wraps anything thrown into a RuneError: RuneErrors pass through, others become INTERNAL_ERROR. */
  static from(value: unknown, fallback: ErrorCode = 'INTERNAL_ERROR'): RuneError {
    if (RuneError.is(value)) return value;
    const message = value instanceof Error ? value.message : String(value);
    return new RuneError(fallback, message || 'unexpected error', { cause: value });
  }
}
