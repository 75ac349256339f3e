/**
 * Parsing of command-line values that yargs leaves as strings: node lists, `--since` and the
 * `--params` source (durations are parsed by `parseDuration` of @rune/core). Every malformed value becomes a RuneError with the right EPS code.
 */
import { readFileSync } from 'node:fs';
import { type DurationSyntax, durationToMs } from '@rune/core';
import { RuneError } from '@rune/protocol';

/** Flattens repeatable, comma-separated `--node` values; empty items are dropped. */
export function parseNodeArgs(values: readonly unknown[] | undefined): string[] {
  return (values ?? [])
    .flatMap((value) => String(value).split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
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

/** `--since` durations: whole minutes, hours or days back from now. */
const SINCE_SYNTAX: DurationSyntax = {
  units: ['m', 'h', 'd'],
  bareMilliseconds: false,
  fractions: false,
};

/** Parses `--since`: a duration back from now (`1h`, `30m`, `2d`) or an ISO date/time. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const ago = durationToMs(value, SINCE_SYNTAX);
  const date = ago === undefined ? new Date(value) : new Date(now.getTime() - ago);
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
