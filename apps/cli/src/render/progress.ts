/**
 * The live progress bar of a fleet run (pretty output on a TTY, drawn on stderr).
 *
 * Rendering is a pure function of a small state ({@link renderProgressLine}); the
 * {@link ProgressBar} only tracks that state from run events and redraws one line in place,
 * throttled so a 1000-node run does not spend its time repainting. It never draws when stderr
 * is not a terminal or the output is machine-readable (json/jsonl): see {@link shouldShowProgress}.
 */
import pc from 'picocolors';
import { terminalSafe } from './terminal-text.js';

/** How a finished node is counted. Matches the execution step's node status. */
export type ProgressStatus = 'success' | 'partial' | 'failure' | 'skipped';

/** What the bar shows. */
export interface ProgressState {
  total: number;
  running: number;
  succeeded: number;
  failed: number;
  skipped: number;
  elapsedMs: number;
  /** Estimated time to finish, once a node has finished. */
  etaMs?: number;
  /** Names of the nodes still running, in start order (shown last, as many as fit). */
  runningNodes?: readonly string[];
  /** Shown at the end of the line, e.g. the action name. */
  label?: string;
}

/** Options of {@link renderProgressLine}. */
export interface RenderProgressOptions {
  /** Terminal width in columns (the line never exceeds it). */
  columns: number;
  /** Use ANSI colours. */
  color: boolean;
}

/** Default terminal width when the stream does not report one. */
export const DEFAULT_COLUMNS = 80;

function formatElapsed(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
}

/**
 * The names of running nodes that fit in `room` columns: `web1 web2 +6` (the count of those
 * left out last). Empty when not even one name and its count fit.
 */
function fitNames(names: readonly string[], room: number): string {
  const safe = names.map((name) => terminalSafe(name));
  for (let shown = safe.length; shown > 0; shown--) {
    const rest = safe.length - shown;
    const text = `${safe.slice(0, shown).join(' ')}${rest > 0 ? ` +${rest}` : ''}`;
    if (text.length <= room) return text;
  }
  return '';
}

/**
 * One line of progress:
 * `[#####-----]  42/100  ok 40  failed 2  skipped 0  running 8  12.3s  eta 17s  check-disk  web7 web9 +6`.
 */
export function renderProgressLine(state: ProgressState, options: RenderProgressOptions): string {
  const done = state.succeeded + state.failed + state.skipped;
  const width = String(state.total).length;
  const tailWith = (colors: ReturnType<typeof pc.createColors>): string => {
    const counts = [
      `${String(done).padStart(width)}/${state.total}`,
      colors.green(`ok ${state.succeeded}`),
      state.failed > 0 ? colors.red(`failed ${state.failed}`) : `failed ${state.failed}`,
      state.skipped > 0 ? colors.yellow(`skipped ${state.skipped}`) : `skipped ${state.skipped}`,
      `running ${state.running}`,
      formatElapsed(state.elapsedMs),
    ];
    if (state.etaMs !== undefined && done < state.total)
      counts.push(`eta ${formatElapsed(state.etaMs)}`);
    if (state.label !== undefined) counts.push(terminalSafe(state.label));
    return counts.join('  ');
  };
  const plain = tailWith(pc.createColors(false));
  const names = state.runningNodes ?? [];
  // With node names to show, the bar gives up half its width to them.
  const barMax = names.length > 0 ? 20 : 40;
  const barWidth = Math.max(0, Math.min(barMax, options.columns - plain.length - 4));
  if (barWidth < 5) return plain.slice(0, Math.max(0, options.columns - 1));
  const colors = pc.createColors(options.color);
  const fraction = state.total === 0 ? 1 : done / state.total;
  const filled = Math.round(fraction * barWidth);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}`;
  const line = `[${colors.cyan(bar)}] ${tailWith(colors)}`;
  const used = barWidth + 3 + plain.length;
  const shown = fitNames(names, options.columns - 1 - used - 2);
  return shown === '' ? line : `${line}  ${colors.dim(shown)}`;
}

/** Whether a run should draw a progress bar. */
export function shouldShowProgress(options: {
  isTTY: boolean | undefined;
  output: string;
  total: number;
}): boolean {
  return options.isTTY === true && options.output === 'pretty' && options.total > 0;
}

/** Where the bar is drawn: a subset of a `tty.WriteStream`. */
export interface ProgressStream {
  write(chunk: string): unknown;
  columns?: number;
}

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  total: number;
  stream: ProgressStream;
  color: boolean;
  label?: string;
  /** Clock (injectable for tests). */
  now?: () => number;
  /** Minimum ms between redraws (the first and last draws are never throttled). Default 80. */
  throttleMs?: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/** Tracks a fleet run and redraws its progress line in place. */
export class ProgressBar {
  private readonly state: ProgressState;
  private readonly now: () => number;
  private readonly startedAt: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private closed = false;
  private paused = false;
  /** Prints held back while paused (a prompt owns the terminal), in order. */
  private readonly held: (() => void)[] = [];
  /** Running nodes in start order (a name may run more than once in theory: counted). */
  private readonly running: string[] = [];

  constructor(private readonly options: ProgressBarOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.state = {
      total: options.total,
      running: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      elapsedMs: 0,
    };
    if (options.label !== undefined) this.state.label = options.label;
  }

  /** A node started (`node`: its name, shown while it runs). */
  start(node?: string): void {
    this.state.running++;
    if (node !== undefined) this.running.push(node);
    this.draw(false);
  }

  /** A node finished (or was skipped without starting: pass `started: false`). */
  finish(status: ProgressStatus, started = true, node?: string): void {
    if (started) this.state.running = Math.max(0, this.state.running - 1);
    if (started && node !== undefined) {
      const index = this.running.indexOf(node);
      if (index >= 0) this.running.splice(index, 1);
    }
    if (status === 'failure') this.state.failed++;
    else if (status === 'skipped') this.state.skipped++;
    else this.state.succeeded++;
    const done = this.state.succeeded + this.state.failed + this.state.skipped;
    this.draw(done >= this.state.total);
  }

  /** Redraws (throttled) so the elapsed time moves while nodes run; call it from a timer. */
  tick(): void {
    this.draw(false);
  }

  /**
   * Prints something above the bar: erases the bar, calls `print` (which writes whole lines to
   * stdout or stderr), then draws the bar again below it. After {@link clear} it only prints.
   */
  interject(print: () => void): void {
    if (this.paused && !this.closed) {
      this.held.push(print);
      return;
    }
    if (this.closed || !this.drawn) {
      print();
      return;
    }
    this.options.stream.write(CLEAR_LINE);
    this.drawn = false;
    print();
    this.draw(true);
  }

  /**
   * Erases the bar and stops drawing until {@link resume}: something else owns the terminal
   * (a passphrase prompt). Lines to print meanwhile are held back, so nothing lands inside the
   * prompt. Nestable calls are not needed: callers serialize their prompts.
   */
  pause(): void {
    if (this.closed) return;
    if (this.drawn) this.options.stream.write(CLEAR_LINE);
    this.drawn = false;
    this.paused = true;
  }

  /** Prints what was held back while paused, then draws the bar again. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const print of this.held.splice(0)) print();
    this.draw(true);
  }

  /** Erases the bar so the summary (or an error) starts on a clean line. Idempotent. */
  clear(): void {
    if (this.drawn) this.options.stream.write(CLEAR_LINE);
    this.drawn = false;
    this.closed = true;
    this.paused = false;
    for (const print of this.held.splice(0)) print();
  }

  /** Current state (for tests and the summary). */
  snapshot(): ProgressState {
    const elapsedMs = this.now() - this.startedAt;
    const done = this.state.succeeded + this.state.failed + this.state.skipped;
    const snapshot: ProgressState = { ...this.state, elapsedMs };
    // Throughput so far (finished nodes per ms, with the concurrency the run has) times what is left.
    if (done > 0 && done < this.state.total) {
      snapshot.etaMs = (elapsedMs / done) * (this.state.total - done);
    }
    if (this.running.length > 0) snapshot.runningNodes = [...this.running];
    return snapshot;
  }

  private draw(force: boolean): void {
    if (this.closed || this.paused) return;
    const at = this.now();
    if (!force && this.drawn && at - this.lastDraw < (this.options.throttleMs ?? 80)) return;
    this.lastDraw = at;
    this.drawn = true;
    const line = renderProgressLine(this.snapshot(), {
      columns: this.options.stream.columns ?? DEFAULT_COLUMNS,
      color: this.options.color,
    });
    this.options.stream.write(`${CLEAR_LINE}${line}`);
  }
}

/** Runs a terminal prompt with the terminal to itself. */
export type PromptGuard = <T>(ask: () => Promise<T>) => Promise<T>;

/**
 * A {@link PromptGuard} for a run whose progress bar (if any) `bar` returns: prompts run one at a
 * time (two nodes needing the same key's passphrase never ask at once), and while one runs the
 * bar is paused — erased, not redrawn, node lines held back — so nothing is drawn into the
 * prompt line and the typed answer (never echoed) cannot be interleaved with output.
 */
export function createPromptGuard(bar: () => ProgressBar | undefined): PromptGuard {
  let queue: Promise<unknown> = Promise.resolve();
  return <T>(ask: () => Promise<T>): Promise<T> => {
    const turn = queue.then(async () => {
      const current = bar();
      current?.pause();
      try {
        return await ask();
      } finally {
        current?.resume();
      }
    });
    queue = turn.catch(() => undefined);
    return turn;
  };
}
