/**
 * `0003_policy_approvals` (RBAC, issue 14): the approval request of every run that waits in
 * `awaiting_approval`, the votes on it, and the creator bound of tokens minted through the API
 * (a token never holds more rights than its creator: every decision for it is also made for the
 * creator's subjects). Portable types only: it runs on SQLite and PostgreSQL.
 */
import type { Kysely, Migration } from 'kysely';

/** The migration. */
export const policyApprovalsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('approval_requests')
      .addColumn('run_id', 'text', (c) => c.primaryKey().references('runs.id').onDelete('cascade'))
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('requester_subject_json', 'text')
      .addColumn('binding_sha256', 'text', (c) => c.notNull())
      .addColumn('binding_json', 'text', (c) => c.notNull())
      .addColumn('quorum', 'integer', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('rules_json', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('decided_at', 'text')
      .execute();
    await db.schema
      .createIndex('approval_requests_state')
      .on('approval_requests')
      .column('state')
      .execute();
    await db.schema
      .createTable('approval_votes')
      .addColumn('run_id', 'text', (c) =>
        c.notNull().references('approval_requests.run_id').onDelete('cascade'),
      )
      .addColumn('approver', 'text', (c) => c.notNull())
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('comment', 'text', (c) => c.notNull())
      .addColumn('binding_sha256', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('approval_votes_pk', ['run_id', 'approver'])
      .execute();
    await db.schema
      .createTable('token_bounds')
      .addColumn('token_id', 'text', (c) => c.primaryKey())
      .addColumn('creator', 'text', (c) => c.notNull())
      .addColumn('bounds_json', 'text', (c) => c.notNull())
      .execute();
  },
};
