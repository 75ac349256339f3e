/**
 * Recognising a unique-constraint violation in either engine. Several instances on one database
 * make a conflict a normal outcome (two instances numbering a run at once, one idempotency key
 * retried on two instances at once): the database decides, and the loser retries or reads the
 * winner's row.
 */

/** True when `error` is a unique (or primary key) violation of SQLite or PostgreSQL. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '23505') return true;
  const message = error instanceof Error ? error.message : String(error);
  return /UNIQUE constraint failed|SQLITE_CONSTRAINT/i.test(message);
}

/** Runs `attempt` again (up to `times`) while it fails with a unique violation. */
export async function retryOnUniqueViolation<T>(attempt: () => Promise<T>, times = 20): Promise<T> {
  for (let round = 1; ; round++) {
    try {
      return await attempt();
    } catch (error) {
      if (round >= times || !isUniqueViolation(error)) throw error;
    }
  }
}
