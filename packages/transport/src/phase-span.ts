/**
 * The optional span hook of the transport contract: how a transport tells the caller (core's
 * tracing) when it connects, uploads and executes, without importing a tracing library. Core
 * passes {@link TransportExecRequest.phaseSpan}; a transport wraps each step in
 * {@link withPhaseSpan}, which calls the step directly when no hook was passed, so a transport
 * that ignores the hook stays correct and one that uses it costs nothing when tracing is off.
 */

/**
 * The steps a transport can report: `connect` (TCP and, for SSH, the handshake and
 * authentication of a new connection), `handshake` (a protocol handshake a transport can time
 * apart from `connect`), `upload` (shipping the plugin on a cache miss), `exec` (running the
 * plugin, up to its exit), `fetch` (downloading an artifact).
 */
export type TransportPhase = 'connect' | 'handshake' | 'upload' | 'exec' | 'fetch';

/** Attribute values a transport may attach to a phase (a subset of OpenTelemetry's). */
export type TransportPhaseAttributes = Readonly<Record<string, string | number | boolean>>;

/** What a phase can record while it runs. */
export interface TransportPhaseRecorder {
  /** Adds facts learnt during the phase (e.g. `rune.connection.reused`). */
  setAttributes(attributes: TransportPhaseAttributes): void;
}

/**
 * Runs `step` as the named phase: the hook starts a span, runs `step` inside it, and ends it
 * when the promise settles (recording a rejection as the span's error). It must return what
 * `step` returns and rethrow what it throws, unchanged.
 */
export type TransportPhaseHook = <T>(
  phase: TransportPhase,
  step: (recorder: TransportPhaseRecorder) => Promise<T>,
) => Promise<T>;

const IGNORED: TransportPhaseRecorder = { setAttributes: () => {} };

/**
 * Runs `step` through the request's hook when it has one, else directly. The one helper every
 * transport uses, so none needs to check for the hook itself.
 */
export function withPhaseSpan<T>(
  request: { readonly phaseSpan?: TransportPhaseHook | undefined },
  phase: TransportPhase,
  step: (recorder: TransportPhaseRecorder) => Promise<T>,
): Promise<T> {
  const hook = request.phaseSpan;
  return hook === undefined ? step(IGNORED) : hook(phase, step);
}
