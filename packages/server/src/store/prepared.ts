/**
 * Hot read queries compiled once. Kysely builds an immutable query tree and compiles it to SQL on
 * every call; for the reads every request makes (its token, its token's bounds, a run by id)
 * that was a large part of the event loop's time per request (the profile in bench/README.md).
 * A prepared query is built and compiled once per database, with placeholder values for its
 * parameters, and each call only puts the values in their places: the same SQL, for the same
 * dialect, through the same Kysely executor (plugins, query log, driver).
 */
import type { Compilable, CompiledQuery, Kysely } from 'kysely';

const PLACEHOLDER = '\u0000rune-prepared-parameter-';

/**
 * Ends the SQL of a read that the store's SQLite worker may answer at once, without waiting for
 * the COMMIT of the group commit it runs inside (reads normally wait: they may see the group's
 * writes). Only for reads whose answer no uncommitted write can make wrong in a harmful way; a
 * trailing comment, so every dialect runs the same statement.
 */
export const UNHELD_READ_MARK = ' /* rune:unheld-read */';

interface Prepared<R> {
  query: CompiledQuery<R>;
  /** For each parameter of the compiled query: the index of the value that fills it, if any. */
  slots: Array<number | undefined>;
}

/**
 * A query whose `arity` string values are bound parameters, compiled on first use for each
 * database. `build` must use every value as a value (a bound parameter), never to choose the
 * query's shape.
 */
export function preparedQuery<DB, R>(
  arity: number,
  build: (db: Kysely<DB>, ...values: string[]) => Compilable<R>,
  options: { unheld?: boolean } = {},
): (db: Kysely<DB>, ...values: string[]) => Promise<R[]> {
  const compiled = new WeakMap<object, Prepared<R>>();
  return async (db, ...values) => {
    let prepared = compiled.get(db);
    if (prepared === undefined) {
      const placeholders = Array.from({ length: arity }, (_, index) => `${PLACEHOLDER}${index}`);
      const built = build(db, ...placeholders).compile();
      const query =
        options.unheld === true ? { ...built, sql: `${built.sql}${UNHELD_READ_MARK}` } : built;
      const slots = query.parameters.map((parameter) => {
        const index = placeholders.indexOf(parameter as string);
        return index < 0 ? undefined : index;
      });
      prepared = { query, slots };
      compiled.set(db, prepared);
    }
    const { query, slots } = prepared;
    const parameters = query.parameters.map((parameter, index) => {
      const slot = slots[index];
      return slot === undefined ? parameter : values[slot];
    });
    // The original query node stays (the store latency metric labels by its kind).
    const result = await db.executeQuery<R>({ ...query, parameters });
    return result.rows;
  };
}
