/**
 * Parsing of command-line values that yargs leaves as strings: node lists, durations and the
 * `--params` source. Every malformed value becomes a RuneError with the right EPS code.
 */
import { readFileSync } from 'node:fs';
import { RuneError } from '@rune/protocol';

/** Flattens repeatable, comma-separated `--node` values; empty items are dropped. */
export function parseNodeArgs(values: readonly unknown[] | undefined): string[] {
  return (values ?? [])
    .flatMap((value) => String(value).split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `--timeout`: plain milliseconds (`1500`) or a number with a unit (`500ms`, `30s`, `5m`, `1h`). */
export function parseDurationMs(value: unknown, flag = '--timeout'): number {
  const text = String(value).trim();
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  const amount = match === null ? Number.NaN : Number(match[1]) * UNITS[match[2] ?? 'ms']!;
  if (!Number.isFinite(amount) || amount < 1 || !Number.isInteger(Math.round(amount))) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `${flag} must be milliseconds or a duration like 30s, 5m, 1h; got "${text.slice(0, 40)}"`,
      { source: { component: 'rune-cli' }, details: { flag, value: text.slice(0, 100) } },
    );
  }
  return Math.round(amount);
}

/**
 * Reads `--params`: `@file.json`, `-` (stdin) or an inline JSON object. Throws
 * INVALID_PARAMETERS when it is unreadable or not a JSON object.
 */
export function readParamsArg(
  value: string,
  readStdin: () => string = () => readFileSync(0, 'utf8'),
): Record<string, unknown> {
  let text: string;
  let origin: string;
  if (value === '-') {
    origin = 'stdin';
    text = readStdin();
  } else if (value.startsWith('@')) {
    origin = value.slice(1);
    try {
      text = readFileSync(origin, 'utf8');
    } catch (error) {
      throw new RuneError('INVALID_PARAMETERS', `cannot read --params file ${origin}`, {
        cause: error,
        source: { component: 'rune-cli' },
        details: { file: origin, errno: (error as NodeJS.ErrnoException).code },
      });
    }
  } else {
    origin = 'the --params value';
    text = value;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RuneError(
      'INVALID_PARAMETERS',
      `${origin} is not valid JSON: ${(error as Error).message}`,
      {
        source: { component: 'rune-cli' },
        details: { source: origin },
      },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RuneError('INVALID_PARAMETERS', `${origin} must be a JSON object of parameters`, {
      source: { component: 'rune-cli' },
      details: { source: origin },
    });
  }
  return parsed as Record<string, unknown>;
}

/** Parses `--since`: a duration back from now (`1h`, `30m`, `2d`) or an ISO date/time. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const match = /^(\d+)(m|h|d)$/.exec(value.trim());
  if (match !== null) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(match[1]) * unit);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `--since must be like 30m, 2h, 7d or an ISO date; got "${value.slice(0, 40)}"`,
      {
        source: { component: 'rune-cli' },
      },
    );
  }
  return date;
}
