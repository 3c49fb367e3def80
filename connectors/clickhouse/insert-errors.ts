/**
 * What an insert failure means for the rows in it:
 * - transient: ClickHouse is unreachable or overloaded (connection refused/reset, timeouts, a 5xx from a proxy, too
 *   many parts, memory): the same insert will succeed later, so it is retried;
 * - rows: ClickHouse refused a row as data (a value that does not parse as its column's type): only that row is bad;
 * - table: the table or a column is not what the rows expect (unknown table, database or column): every row of the
 *   insert is refused, and retrying will not change that.
 * Anything not known to be permanent counts as transient: a wrong guess then costs a wait (bounded by the outage
 * budget), where the opposite guess would drop rows.
 */
export type InsertFailureKind = 'transient' | 'rows' | 'table';

export interface InsertFailure {
  kind: InsertFailureKind;
  /** ClickHouse's error code, when the server answered with one. */
  code?: number;
  /** The 1-based row of the insert that the server named as the one it could not read. */
  row?: number;
  reason: string;
}

// ClickHouse error codes (the same across releases) for values that do not fit their column.
const ROW_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  376, // CANNOT_PARSE_UUID
  467, // CANNOT_PARSE_BOOL
]);
// ... and for a table that is not the one the rows were written for (a migration not applied, or applied since).
const TABLE_CODES = new Set([
  8, // THERE_IS_NO_COLUMN
  10, // NOT_FOUND_COLUMN_IN_BLOCK
  16, // NO_SUCH_COLUMN_IN_TABLE
  47, // UNKNOWN_IDENTIFIER
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR (the insert is generated: a table name it cannot even parse)
  81, // UNKNOWN_DATABASE
]);

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The server's own words: 18.16 wraps them in "Code: N, e.displayText() = DB::Exception: … , e.what() = …". */
function serverText(msg: string): string {
  const m = /DB::Exception: ([\s\S]*?)(?:, e\.what\(\) = [\s\S]*)?$/.exec(msg);
  return (m ? m[1]! : msg).replace(/:?\s*\(at row \d+\)/g, '').replace(/\s+/g, ' ').trim();
}

export function classifyInsertError(err: unknown): InsertFailure {
  const msg = message(err);
  const raw = (err as { code?: unknown } | null)?.code;
  // A server error carries ClickHouse's numeric code (as a string); a socket error carries a Node code (ECONNREFUSED…).
  const codeText = typeof raw === 'string' && /^\d+$/.test(raw) ? raw : /^(?:Code|Error): (\d+)/.exec(msg)?.[1];
  const code = codeText === undefined ? undefined : Number(codeText);
  if (code !== undefined) {
    const text = serverText(msg);
    if (TABLE_CODES.has(code) || (code === 117 && /unknown field/i.test(text))) return { kind: 'table', code, reason: `ClickHouse refused the rows (code ${code}): ${text}` };
    if (ROW_CODES.has(code)) {
      const row = /\(at row (\d+)\)/.exec(msg)?.[1];
      return { kind: 'rows', code, row: row === undefined ? undefined : Number(row), reason: `ClickHouse refused the row (code ${code}): ${text}` };
    }
    return { kind: 'transient', code, reason: `code ${code}: ${text}` };
  }
  // A row the client cannot even serialize (a BigInt, a cycle) is bad data, not an outage.
  if (err instanceof TypeError && /serializ|circular|BigInt/i.test(msg)) return { kind: 'rows', reason: `row not serializable: ${msg}` };
  const node = typeof raw === 'string' ? `${raw}: ` : '';
  return { kind: 'transient', reason: msg.startsWith(node) ? msg : `${node}${msg}` };
}
