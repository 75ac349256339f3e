/**
 * Parsing of command-line values that yargs leaves as strings and no core request takes:
 * `--since` of `rune audit`. (`rune run`'s node lists, `--params`, durations and counts are parsed
 * by core, from the request.) Every malformed value becomes a RuneError with the right EPS code.
 */
import { type DurationSyntax, durationToMs } from '@rune/core';
import { RuneError } from '@rune/protocol';

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
