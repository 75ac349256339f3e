/**
 * The one duration grammar of RUNE: a decimal number and a unit (`500ms`, `30s`, `5m`, `1h`,
 * `2d`). Each option that takes a duration picks which units it accepts, whether a bare number
 * (milliseconds) and a fraction are allowed, through a {@link DurationSyntax}; the number and unit
 * tokens are read here only, so `--timeout`, `--deadline`, `rune audit --since` and the
 * dashboard's run form cannot drift. No dependency: the dashboard bundles this module
 * (`@rune/protocol/durations`); core's `parseDuration` builds its error on it.
 */

/** Upper bound of a per-run timeout: 24 hours. */
export const MAX_TIMEOUT_MS = 86_400_000;

/** Milliseconds per duration unit. */
export const DURATION_UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
} as const;

/** A duration unit. */
export type DurationUnit = keyof typeof DURATION_UNIT_MS;

/** Which forms of the grammar an option accepts. */
export interface DurationSyntax {
  /** Units accepted after the number. */
  readonly units: readonly DurationUnit[];
  /** Whether a number without a unit (milliseconds) is accepted. */
  readonly bareMilliseconds: boolean;
  /** Whether the number may have a decimal fraction (`1.5s`). */
  readonly fractions: boolean;
}

/** Examples of the {@link DEFAULT_DURATION_SYNTAX}, for messages: "a duration such as …". */
export const DEFAULT_DURATION_EXAMPLES = '1500, 500ms, 30s, 5m or 1h';

/** The syntax of `--timeout` and `--deadline`: `1500`, `500ms`, `1.5s`, `5m`, `1h`. */
export const DEFAULT_DURATION_SYNTAX: DurationSyntax = {
  units: ['ms', 's', 'm', 'h'],
  bareMilliseconds: true,
  fractions: true,
};

const DURATION = /^([0-9]+(?:\.[0-9]+)?)([a-z]*)$/;

/**
 * The milliseconds `text` (trimmed) stands for under `syntax`, not rounded; `undefined` when it
 * is not a duration of that syntax or too large to be a finite number.
 */
export function durationToMs(
  text: string,
  syntax: DurationSyntax = DEFAULT_DURATION_SYNTAX,
): number | undefined {
  const match = DURATION.exec(text.trim());
  if (match === null) return undefined;
  const [, number = '', unit = ''] = match;
  if (!syntax.fractions && number.includes('.')) return undefined;
  let perUnit: number;
  if (unit === '') {
    if (!syntax.bareMilliseconds) return undefined;
    perUnit = 1;
  } else if ((syntax.units as readonly string[]).includes(unit)) {
    perUnit = DURATION_UNIT_MS[unit as DurationUnit];
  } else {
    return undefined;
  }
  const value = Number(number) * perUnit;
  return Number.isFinite(value) ? value : undefined;
}
