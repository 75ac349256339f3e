/**
 * Durations of the service's settings and token lifetimes (`90d`, `12h`, `30s`), read with core's
 * one duration grammar ({@link durationToMs}) with days allowed.
 */
import { type DurationSyntax, durationToMs } from '@rune/core';
import { type ErrorCode, RuneError } from '@rune/protocol';

/** Units of long durations: seconds to days, whole numbers. */
export const LONG_DURATION_SYNTAX: DurationSyntax = {
  units: ['ms', 's', 'm', 'h', 'd'],
  bareMilliseconds: false,
  fractions: false,
};

/**
 * Milliseconds of `text` (`90d`); throws `code` (INVALID_ARGUMENT for flags and requests,
 * INVALID_CONFIG for config keys) naming `label` when it is not a positive duration.
 */
export function parseLongDuration(
  text: string,
  label: string,
  code: ErrorCode = 'INVALID_ARGUMENT',
): number {
  const ms = durationToMs(text, LONG_DURATION_SYNTAX);
  if (ms !== undefined && ms >= 1 && Number.isSafeInteger(ms)) return ms;
  throw new RuneError(code, `${label} must be a duration such as 30s, 15m, 12h or 90d`, {
    details: { key: label, value: text.slice(0, 40) },
  });
}
