/**
 * Whole store operations: the statements of one durable write (a run with its events, nodes and
 * idempotency key; an event with what it implies; the alerts of a webhook), compiled by Kysely on
 * the main thread and executed together.
 *
 * Why: on the embedded store every query was a message round trip to the SQLite worker, and a
 * transaction held the worker for all of them (about eight for a run's insert), each round trip
 * waiting for a core on a loaded machine. An operation is one message: the worker runs its
 * statements in one savepoint of its group commit and answers after that group's COMMIT, so
 * "acknowledged = durable" holds as before. On PostgreSQL (or any other Kysely instance) the same
 * statements run in one transaction, in order.
 *
 * Statements cannot use each other's results; what a write needs from the database (the next
 * run position) is a subquery of the statement, and a guard (`stopIfRows`, e.g. "this
 * idempotency key exists") ends the operation early with nothing of it kept.
 */
import type { CompiledQuery, Kysely, Transaction } from 'kysely';
import type { StoreDatabase } from './schema.js';
import { sqliteWorkerOperation } from './sqlite-worker/dialect.js';
import type { StoreOperationTiming } from './sqlite-worker/probe.js';

/** One statement of an operation. */
export interface OperationStatement {
  query: CompiledQuery;
  /** A guard: when it returns rows, the operation stops there and nothing of it is kept. */
  stopIfRows?: boolean;
}

/** What an operation gave: one entry per statement that ran, in order. */
export interface OperationResult {
  results: Array<{ rows: Record<string, unknown>[]; affected: number }>;
  /** True when a guard returned rows (the last entry holds them): nothing was written. */
  stopped: boolean;
  /** The SQLite worker's moments for this operation, when the benchmark probe is on (probe.ts). */
  timing?: StoreOperationTiming;
}

/** A stop that undoes what the operation did inside a transaction (PostgreSQL, callbacks). */
class GuardStop {
  constructor(readonly result: OperationResult) {}
}

/**
 * Runs the statements inside `trx` (a transaction or savepoint the caller owns). A guard that
 * returns rows ends the operation; the caller's transaction decides what stays, so the guard
 * should come before any write (as it does in the store).
 */
export async function runStatementsIn(
  trx: Transaction<StoreDatabase>,
  statements: readonly OperationStatement[],
): Promise<OperationResult> {
  const result: OperationResult = { results: [], stopped: false };
  for (const statement of statements) {
    const answer = await trx.executeQuery<Record<string, unknown>>(statement.query);
    result.results.push({
      rows: answer.rows,
      affected: Number(answer.numAffectedRows ?? BigInt(answer.rows.length)),
    });
    if (statement.stopIfRows === true && answer.rows.length > 0) {
      result.stopped = true;
      return result;
    }
  }
  return result;
}

/**
 * Runs one operation durably and atomically: one worker message on the embedded SQLite store,
 * one transaction elsewhere. Resolves once it committed; rejects with nothing of it kept.
 */
export async function runOperation(
  db: Kysely<StoreDatabase>,
  statements: readonly OperationStatement[],
): Promise<OperationResult> {
  if (statements.length === 0) return { results: [], stopped: false };
  const worker = sqliteWorkerOperation(db);
  if (worker !== undefined) return worker(statements);
  try {
    return await db.transaction().execute(async (trx) => {
      const result = await runStatementsIn(trx, statements);
      // A guard fired: roll back whatever ran before it (nothing, when it comes first).
      if (result.stopped) throw new GuardStop(result);
      return result;
    });
  } catch (error) {
    if (error instanceof GuardStop) return error.result;
    throw error;
  }
}
