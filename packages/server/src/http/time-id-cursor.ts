/**
 * The list cursor of an endpoint whose rows come newest first by a time, then by id (alerts,
 * workflow runs): opaque to clients, base64url of the last row's `[time, id]`. A cursor this
 * server did not issue is INVALID_ARGUMENT on the `cursor` parameter.
 */
import { RuneError } from '@rune/protocol';

const source = { component: 'rune-server' } as const;

/** The cursor after the row with this time and id. */
export function encodeTimeIdCursor(time: string, id: string): string {
  return Buffer.from(JSON.stringify([time, id])).toString('base64url');
}

/** The time and id a cursor of {@link encodeTimeIdCursor} holds; `id` is the ids' pattern. */
export function decodeTimeIdCursor(cursor: string, id: RegExp): [time: string, id: string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === 'string' &&
      id.test(value[1])
    ) {
      return [value[0], value[1]];
    }
  } catch {
    // refused below
  }
  throw new RuneError('INVALID_ARGUMENT', 'cursor is not a cursor this server issued', {
    source,
    details: { parameter: 'cursor' },
  });
}
