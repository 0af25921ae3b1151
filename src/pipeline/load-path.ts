import type { ColumnInfo, Distribution } from '../catalog/catalog.js';
import { isHashableType } from '../routing/value-hasher.js';
import type { CopyFormat } from '../input/copy-format.js';

export type LoadPathKind = 'direct' | 'coordinator';

export interface LoadPath {
  readonly kind: LoadPathKind;
  /** Why the coordinator path was taken (the direct path needs no reason). */
  readonly reason?: string;
}

const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar']);

/**
 * PostgreSQL's client-only encodings (PG_ENCODING_IS_CLIENT_ONLY), under the names and aliases
 * it accepts, cleaned as resolveCopyFormat cleans them. Their multibyte characters can contain
 * bytes such as a backslash or '|', so COPY converts such input before it looks for delimiters
 * (encoding_embeds_ascii in copyfromparse.c). A byte scanner would split it wrongly.
 */
const ASCII_EMBEDDING_ENCODINGS = new Set([
  'SJIS', 'SHIFTJIS', 'MSKANJI', 'WIN932', 'WINDOWS932', 'SHIFTJIS2004',
  'BIG5', 'WIN950', 'WINDOWS950', 'GBK', 'WIN936', 'WINDOWS936', 'UHC', 'WIN949', 'WINDOWS949',
  'GB18030', 'JOHAB',
]);

/** Whether input in this encoding (cleaned name) must reach PostgreSQL's COPY unsplit. */
export function embedsAscii(encoding: string): boolean {
  return ASCII_EMBEDDING_ENCODINGS.has(encoding);
}

/**
 * The direct path writes rows into shards itself, so it is taken only when the client can route
 * every row exactly as Citus would. Anything it cannot be sure of goes through Citus's own COPY
 * on the coordinator, with the reason in the summary.
 */
export function chooseLoadPath(args: {
  citusVersion: string | undefined;
  distribution: Distribution;
  inputColumns: ColumnInfo[];
  tableColumns: ColumnInfo[];
  format: CopyFormat;
  serverEncoding: string;
  forceCoordinator: boolean;
}): LoadPath {
  const { citusVersion, distribution: dist, inputColumns, tableColumns, format } = args;
  const coordinator = (reason: string): LoadPath => ({ kind: 'coordinator', reason });
  if (args.forceCoordinator) return coordinator('--via-coordinator was given');
  if (!citusVersion) return coordinator('the citus extension is not installed on this database');
  if (dist.kind === 'local') return coordinator('the table is not distributed');
  if (dist.kind === 'citus-local') return coordinator('the table is a Citus local table (it lives on the coordinator)');
  if (dist.kind === 'other') return coordinator('the table uses a distribution method other than hash');
  if (dist.shards.some((s) => s.placements.length === 0)) {
    return coordinator('some shard has no active placement on a primary node');
  }
  const omittedWithDefault = tableColumns.filter((c) => c.hasDefault && !inputColumns.includes(c));
  if (omittedWithDefault.length > 0) {
    return coordinator(`column ${omittedWithDefault.map((c) => c.name).join(', ')} is not in the input and has a default, `
      + 'which Citus evaluates on the coordinator');
  }
  if (embedsAscii(format.encoding)) {
    return coordinator(`the input encoding ${format.encoding} has multibyte characters containing ASCII bytes, `
      + 'which only PostgreSQL\'s conversion can split into rows and fields');
  }
  if (dist.kind === 'reference') return { kind: 'direct' };

  const col = inputColumns.find((c) => c.name === dist.column);
  if (!col) return coordinator(`the input has no field for the distribution column ${dist.column}`);
  if (!isHashableType(col.typeName)) {
    return coordinator(`the distribution column ${col.name} has type ${col.displayType}, whose hashing the client `
      + 'does not reproduce (supported: int2, int4, int8, text, varchar, char, uuid, date, timestamp, timestamptz, bool)');
  }
  if (TEXT_TYPES.has(col.typeName)) {
    if (!col.collationDeterministic) {
      return coordinator(`the distribution column ${col.name} has a nondeterministic collation, so equal values can have different bytes`);
    }
    if (args.serverEncoding !== 'UTF8') {
      return coordinator(`the server encoding is ${args.serverEncoding}; text distribution values are hashed client-side only under UTF8`);
    }
    if (format.encoding !== 'UTF8') {
      return coordinator(`the input encoding is ${format.encoding}; text distribution values are hashed client-side only for UTF8 input`);
    }
  }
  return { kind: 'direct' };
}
