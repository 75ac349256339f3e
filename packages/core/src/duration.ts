/**
 * `parseDuration`: a duration of the default syntax as whole milliseconds, or INVALID_ARGUMENT.
 * The grammar itself is the protocol's (`@rune/protocol/durations`), shared with the dashboard's
 * run form; it is re-exported here for core's callers.
 */
import { RuneError } from '@rune/protocol';
import { DEFAULT_DURATION_EXAMPLES, durationToMs } from '@rune/protocol/durations';

export {
  DEFAULT_DURATION_SYNTAX,
  DURATION_UNIT_MS,
  type DurationSyntax,
  type DurationUnit,
  durationToMs,
} from '@rune/protocol/durations';

/**
 * Parses a duration of the {@link DEFAULT_DURATION_SYNTAX} into whole milliseconds (at least 1).
 * Throws INVALID_ARGUMENT otherwise; `label` names the option in the message.
 */
export function parseDuration(text: string, label = 'duration'): number {
  const value = durationToMs(text);
  if (value !== undefined && value >= 1) return Math.round(value);
  throw new RuneError(
    'INVALID_ARGUMENT',
    `${label} must be a duration such as ${DEFAULT_DURATION_EXAMPLES}, not "${text.slice(0, 40)}"`,
    { details: { option: label, value: text.slice(0, 100) }, source: { component: 'rune-core' } },
  );
}
