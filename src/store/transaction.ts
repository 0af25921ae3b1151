import type pg from 'pg';

/**
 * Runs `fn` in one transaction on `db` and commits, or rolls back and rethrows. Takes a client,
 * never a pool: BEGIN and the statements after it must reach the same session.
 */
export async function inTransaction<T>(db: pg.ClientBase, fn: (tx: pg.ClientBase) => Promise<T>): Promise<T> {
  await db.query('BEGIN');
  try {
    const out = await fn(db);
    await db.query('COMMIT');
    return out;
  } catch (err) {
    // The session may already be gone (that is often why we are here): the rollback is best effort.
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
