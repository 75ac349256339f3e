// bench/startup.mjs --cli-without-otel only: bundled in place of @opentelemetry/api (see
// apps/cli/scripts/bundle.mjs, RUNE_BUNDLE_OTEL_API) to build a CLI that contains no
// OpenTelemetry code at all, the baseline "tracing off" is compared with. The names and calls
// @rune/core makes, each doing nothing; a name core imports that is missing here fails that build.
// Never shipped, never used by a test.
const INVALID_SPAN_CONTEXT = {
  traceId: '00000000000000000000000000000000',
  spanId: '0000000000000000',
  traceFlags: 0,
};
const span = {
  spanContext: () => INVALID_SPAN_CONTEXT,
  setAttribute() {
    return span;
  },
  setAttributes() {
    return span;
  },
  addEvent() {
    return span;
  },
  setStatus() {
    return span;
  },
  updateName() {
    return span;
  },
  recordException() {},
  end() {},
  isRecording: () => false,
};
const rootContext = {
  getValue: () => undefined,
  setValue: () => rootContext,
  deleteValue: () => rootContext,
};
export const ROOT_CONTEXT = rootContext;
export const context = {
  active: () => rootContext,
  with: (_context, fn, thisArg, ...args) => fn.call(thisArg, ...args),
};
export const trace = {
  getTracer: () => ({
    startSpan: () => span,
    startActiveSpan: (...args) => args.at(-1)(span),
  }),
  getSpan: () => undefined,
  getActiveSpan: () => undefined,
  getSpanContext: () => undefined,
  setSpan: (parent) => parent,
  wrapSpanContext: () => span,
};
export const SpanStatusCode = { UNSET: 0, OK: 1, ERROR: 2 };
export const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2, PRODUCER: 3, CONSUMER: 4 };
