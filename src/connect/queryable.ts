import type { QueryResult, QueryResultRow } from 'pg';

/** The subset of pg's Client/Pool that catalog readers need (so they accept either). */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}
