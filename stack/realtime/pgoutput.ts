/**
 * A decoder for PostgreSQL's built-in logical replication output (pgoutput,
 * protocol version 1) as `pg_logical_slot_get_binary_changes` returns it, one
 * message per row. Only what Realtime needs: relations, begin/commit and
 * row changes; values stay in Postgres' text format with their type oids.
 */

export type Relation = {
  oid: number; schema: string; table: string;
  columns: Array<{ name: string; typeOid: number; key: boolean }>;
};

/** A row image: column name to text value (null for SQL NULL; unchanged TOAST values are left out). */
export type Tuple = Record<string, string | null>;

export type WalMessage =
  | { tag: "begin"; commitTime: Date }
  | { tag: "commit" }
  | { tag: "relation"; relation: Relation }
  | { tag: "insert"; relationOid: number; next: Tuple }
  | { tag: "update"; relationOid: number; previous?: Tuple; next: Tuple }
  | { tag: "delete"; relationOid: number; previous: Tuple }
  | { tag: "other" };

// pgoutput timestamps count microseconds from 2000-01-01 UTC.
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  byte(): number { return this.buf.readUInt8(this.at++); }
  int16(): number { const v = this.buf.readInt16BE(this.at); this.at += 2; return v; }
  int32(): number { const v = this.buf.readInt32BE(this.at); this.at += 4; return v; }
  int64(): bigint { const v = this.buf.readBigInt64BE(this.at); this.at += 8; return v; }
  cstring(): string {
    const end = this.buf.indexOf(0, this.at);
    const s = this.buf.toString("utf8", this.at, end);
    this.at = end + 1;
    return s;
  }
  text(len: number): string { const s = this.buf.toString("utf8", this.at, this.at + len); this.at += len; return s; }
}

function tuple(r: Reader, rel: Relation | undefined): Tuple {
  const n = r.int16();
  const out: Tuple = {};
  for (let i = 0; i < n; i++) {
    const kind = String.fromCharCode(r.byte());
    const name = rel?.columns[i]?.name ?? `column_${i}`;
    if (kind === "n") out[name] = null;
    else if (kind === "t") out[name] = r.text(r.int32());
    // 'u': an unchanged TOASTed value the WAL does not carry; leave it out.
  }
  return out;
}

/** Decode one pgoutput message; `relations` resolves the column names of row messages. */
export function decodeMessage(buf: Buffer, relations: Map<number, Relation>): WalMessage {
  const r = new Reader(buf);
  const tag = String.fromCharCode(r.byte());
  switch (tag) {
    case "B": {
      r.int64(); // final lsn
      const micros = r.int64();
      return { tag: "begin", commitTime: new Date(PG_EPOCH_MS + Number(micros / 1000n)) };
    }
    case "C":
      return { tag: "commit" };
    case "R": {
      const oid = r.int32();
      const schema = r.cstring();
      const table = r.cstring();
      r.byte(); // replica identity setting
      const n = r.int16();
      const columns = [];
      for (let i = 0; i < n; i++) {
        const flags = r.byte();
        const name = r.cstring();
        const typeOid = r.int32();
        r.int32(); // typmod
        columns.push({ name, typeOid, key: (flags & 1) === 1 });
      }
      return { tag: "relation", relation: { oid, schema, table, columns } };
    }
    case "I": {
      const relationOid = r.int32();
      r.byte(); // 'N'
      return { tag: "insert", relationOid, next: tuple(r, relations.get(relationOid)) };
    }
    case "U": {
      const relationOid = r.int32();
      const rel = relations.get(relationOid);
      const kind = String.fromCharCode(r.byte());
      let previous: Tuple | undefined;
      if (kind === "K" || kind === "O") {
        previous = tuple(r, rel);
        r.byte(); // 'N'
      }
      return { tag: "update", relationOid, previous, next: tuple(r, rel) };
    }
    case "D": {
      const relationOid = r.int32();
      r.byte(); // 'K' or 'O'
      return { tag: "delete", relationOid, previous: tuple(r, relations.get(relationOid)) };
    }
    default:
      return { tag: "other" };
  }
}
