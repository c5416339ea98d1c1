/**
 * pgmq behaviour the project relies on, through pgmq's public API only, so
 * the same tests pass against the real extension and our stand-in
 * (sql/standins/pgmq.sql). Each test uses its own queue: files share a database.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";

type Message = { msg_id: string; read_ct: number; enqueued_at: Date; vt: Date; message: unknown };

const queueName = () => `t_${randomUUID().replaceAll("-", "").slice(0, 16)}`;

describe("pgmq", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  async function newQueue(): Promise<string> {
    const name = queueName();
    await db.query("select pgmq.create(queue_name => $1)", [name]);
    return name;
  }
  async function send(queue: string, msg: unknown, delay = 0, c: pg.ClientBase = db): Promise<string> {
    const r = await c.query("select * from pgmq.send(queue_name => $1, msg => $2::jsonb, delay => $3::integer) as id", [
      queue, JSON.stringify(msg), delay,
    ]);
    return r.rows[0].id as string;
  }
  async function read(queue: string, vt: number, qty: number, c: pg.ClientBase = db): Promise<Message[]> {
    const r = await c.query("select * from pgmq.read(queue_name => $1, vt => $2::integer, qty => $3::integer)", [
      queue, vt, qty,
    ]);
    return r.rows as Message[];
  }
  async function metrics(queue: string) {
    return (await db.query("select * from pgmq.metrics(queue_name => $1)", [queue])).rows[0];
  }

  it("create() makes q_<name> and a_<name> tables shaped like pgmq 1.5 and lists the queue", async () => {
    const q = await newQueue();
    await db.query("select pgmq.create(queue_name => $1)", [q]); // idempotent
    const cols = async (table: string) =>
      (await db.query(
        `select column_name, data_type from information_schema.columns
          where table_schema = 'pgmq' and table_name = $1 order by ordinal_position`, [table],
      )).rows.map((r) => `${r.column_name} ${r.data_type}`);
    const queueCols = [
      "msg_id bigint", "read_ct integer", "enqueued_at timestamp with time zone",
      "vt timestamp with time zone", "message jsonb", "headers jsonb",
    ];
    expect(await cols(`q_${q}`)).toEqual(queueCols);
    expect(await cols(`a_${q}`)).toEqual([...queueCols.slice(0, 3), "archived_at timestamp with time zone", ...queueCols.slice(3)]);
    const listed = (await db.query("select * from pgmq.list_queues() where queue_name = $1", [q])).rows;
    expect(listed).toEqual([expect.objectContaining({ queue_name: q, is_partitioned: false, is_unlogged: false })]);
  });

  it("read() hides a message for vt seconds, then delivers it again with read_ct incremented", async () => {
    const q = await newQueue();
    const id = await send(q, { job: 1 });
    const first = await read(q, 1, 1);
    expect(first).toEqual([expect.objectContaining({ msg_id: id, read_ct: 1, message: { job: 1 } })]);
    expect(await read(q, 1, 1)).toEqual([]);
    const again = await waitFor(async () => (await read(q, 30, 1))[0]);
    expect(again).toMatchObject({ msg_id: id, read_ct: 2 });
  });

  it("set_vt() makes a read message visible again", async () => {
    const q = await newQueue();
    const id = await send(q, { job: 2 });
    await read(q, 300, 1);
    expect(await read(q, 300, 1)).toEqual([]);
    const updated = (await db.query("select * from pgmq.set_vt(queue_name => $1, msg_id => $2::bigint, vt => 0)", [q, id])).rows;
    expect(updated).toEqual([expect.objectContaining({ msg_id: id, read_ct: 1 })]);
    expect(await read(q, 300, 1)).toEqual([expect.objectContaining({ msg_id: id, read_ct: 2 })]);
  });

  it("concurrent readers in open transactions never receive the same message", async () => {
    const q = await newQueue();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await send(q, { i }));
    const [c1, c2] = [await connect(), await connect()];
    try {
      await c1.query("begin");
      await c2.query("begin");
      const [a, b] = await Promise.all([read(q, 30, 5, c1), read(q, 30, 5, c2)]);
      const seenA = a.map((m) => m.msg_id);
      const seenB = b.map((m) => m.msg_id);
      expect(seenA.filter((id) => seenB.includes(id))).toEqual([]);
      expect([...seenA, ...seenB].sort()).toEqual([...ids].sort());
      // Rows the other transaction holds stay invisible to a second read.
      expect(await read(q, 30, 10, c2)).toEqual([]);
    } finally {
      await c1.query("rollback");
      await c2.query("rollback");
      await c1.end();
      await c2.end();
    }
  });

  it("rolling back a read leaves the message visible with read_ct unchanged", async () => {
    const q = await newQueue();
    const id = await send(q, { job: 3 });
    await db.query("begin");
    expect(await read(q, 300, 1)).toEqual([expect.objectContaining({ msg_id: id, read_ct: 1 })]);
    await db.query("rollback");
    expect(await read(q, 300, 1)).toEqual([expect.objectContaining({ msg_id: id, read_ct: 1 })]);
  });

  it("archive() moves messages to a_<name> keeping read_ct and payload", async () => {
    const q = await newQueue();
    const [a, b, c] = [await send(q, { n: "a" }), await send(q, { n: "b" }), await send(q, { n: "c" })];
    await read(q, 0, 1); // a: read_ct 1
    const one = await db.query("select pgmq.archive(queue_name => $1, msg_id => $2::bigint) as ok", [q, a]);
    expect(one.rows[0].ok).toBe(true);
    const twice = await db.query("select pgmq.archive(queue_name => $1, msg_id => $2::bigint) as ok", [q, a]);
    expect(twice.rows[0].ok).toBe(false);
    const many = await db.query("select * from pgmq.archive(queue_name => $1, msg_ids => $2::bigint[]) as id", [q, [b, c, "999999"]]);
    expect(many.rows.map((r) => r.id).sort()).toEqual([b, c].sort());
    expect((await db.query(`select count(*)::int as n from pgmq.q_${q}`)).rows[0].n).toBe(0);
    const archived = (await db.query(`select msg_id, read_ct, message, archived_at from pgmq.a_${q} order by msg_id`)).rows;
    expect(archived.map((r) => [r.msg_id, r.read_ct, r.message])).toEqual([[a, 1, { n: "a" }], [b, 0, { n: "b" }], [c, 0, { n: "c" }]]);
    expect(archived.every((r) => r.archived_at instanceof Date)).toBe(true);
  });

  it("delete() removes messages and reports which existed", async () => {
    const q = await newQueue();
    const [a, b, c] = [await send(q, 1), await send(q, 2), await send(q, 3)];
    const del = (id: string) => db.query("select pgmq.delete(queue_name => $1, msg_id => $2::bigint) as ok", [q, id]);
    expect((await del(a)).rows[0].ok).toBe(true);
    expect((await del(a)).rows[0].ok).toBe(false);
    const many = await db.query("select * from pgmq.delete(queue_name => $1, msg_ids => $2::bigint[]) as id", [q, [b, c, a]]);
    expect(many.rows.map((r) => r.id).sort()).toEqual([b, c].sort());
    expect(await read(q, 30, 10)).toEqual([]);
    expect((await db.query(`select count(*)::int as n from pgmq.a_${q}`)).rows[0].n).toBe(0);
  });

  it("metrics() reports queue length, visible length, message ages and total messages sent", async () => {
    const q = await newQueue();
    expect(await metrics(q)).toMatchObject({
      queue_name: q, queue_length: "0", total_messages: "0", newest_msg_age_sec: null, oldest_msg_age_sec: null,
    });
    const [oldest] = [await send(q, 1), await send(q, 2), await send(q, 3)];
    await db.query(`update pgmq.q_${q} set enqueued_at = now() - interval '100 seconds' where msg_id = $1`, [oldest]);
    await read(q, 300, 1); // hides the oldest
    const m = await metrics(q);
    expect(m).toMatchObject({ queue_length: "3", queue_visible_length: "2", total_messages: "3" });
    expect(m.oldest_msg_age_sec).toBeGreaterThanOrEqual(100);
    expect(m.newest_msg_age_sec).toBeLessThan(100);
    await db.query("select pgmq.delete(queue_name => $1, msg_id => $2::bigint)", [q, oldest]);
    expect(await metrics(q)).toMatchObject({ queue_length: "2", total_messages: "3" });
    const all = (await db.query("select * from pgmq.metrics_all() where queue_name = $1", [q])).rows;
    expect(all).toEqual([expect.objectContaining({ queue_name: q, queue_length: "2", total_messages: "3" })]);
  });

  it("send() with a delay keeps the message invisible until the delay passes", async () => {
    const q = await newQueue();
    const id = await send(q, { later: true }, 1);
    expect(await read(q, 30, 1)).toEqual([]);
    expect(await metrics(q)).toMatchObject({ queue_length: "1", queue_visible_length: "0" });
    const delivered = await waitFor(async () => (await read(q, 30, 1))[0]);
    expect(delivered).toMatchObject({ msg_id: id, read_ct: 1, message: { later: true } });
  });

  it("send_batch() enqueues every message in order", async () => {
    const q = await newQueue();
    const msgs = [{ n: 1 }, { n: 2 }, { n: 3 }];
    const sent = await db.query("select * from pgmq.send_batch(queue_name => $1, msgs => $2::jsonb[]) as id", [
      q, msgs.map((m) => JSON.stringify(m)),
    ]);
    const ids = sent.rows.map((r) => r.id as string);
    expect(ids).toHaveLength(3);
    const got = await read(q, 30, 10);
    expect(got.map((m) => [m.msg_id, m.message])).toEqual(ids.map((id, i) => [id, msgs[i]]));
  });

  it("pop() returns and deletes the oldest visible message", async () => {
    const q = await newQueue();
    const [a, b] = [await send(q, "a"), await send(q, "b")];
    const pop = async () => (await db.query("select * from pgmq.pop(queue_name => $1)", [q])).rows as Message[];
    expect(await pop()).toEqual([expect.objectContaining({ msg_id: a, message: "a" })]);
    expect(await metrics(q)).toMatchObject({ queue_length: "1" });
    expect(await pop()).toEqual([expect.objectContaining({ msg_id: b, message: "b" })]);
    expect(await pop()).toEqual([]);
  });

  it("read_with_poll() returns as soon as a message arrives", async () => {
    const q = await newQueue();
    const poller = await connect();
    try {
      const pid = (await poller.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      const started = Date.now();
      const polling = poller.query(
        "select * from pgmq.read_with_poll(queue_name => $1, vt => 30, qty => 1, max_poll_seconds => 20, poll_interval_ms => 50)",
        [q],
      );
      await waitFor(async () => {
        const r = await db.query("select 1 from pg_stat_activity where pid = $1 and state = 'active' and query like '%read_with_poll%'", [pid]);
        return r.rowCount ? true : undefined;
      });
      const id = await send(q, { wake: true });
      const rows = (await polling).rows as Message[];
      expect(rows).toEqual([expect.objectContaining({ msg_id: id, read_ct: 1, message: { wake: true } })]);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await poller.end();
    }
  });

  it("read_with_poll() returns nothing once max_poll_seconds pass without a message", async () => {
    const q = await newQueue();
    const started = Date.now();
    const r = await db.query("select * from pgmq.read_with_poll(queue_name => $1, vt => 30, qty => 1, max_poll_seconds => 1)", [q]);
    expect(r.rows).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("purge_queue() empties a queue and drop_queue() removes it", async () => {
    const q = await newQueue();
    for (let i = 0; i < 3; i++) await send(q, i);
    expect((await db.query("select pgmq.purge_queue(queue_name => $1) as n", [q])).rows[0].n).toBe("3");
    expect(await metrics(q)).toMatchObject({ queue_length: "0" });
    expect((await db.query("select pgmq.drop_queue(queue_name => $1) as ok", [q])).rows[0].ok).toBe(true);
    expect((await db.query("select * from pgmq.list_queues() where queue_name = $1", [q])).rows).toEqual([]);
    const tables = await db.query("select to_regclass($1) as q, to_regclass($2) as a", [`pgmq.q_${q}`, `pgmq.a_${q}`]);
    expect(tables.rows[0]).toEqual({ q: null, a: null });
  });

  it("rejects queue names over 47 characters or with SQL metacharacters", async () => {
    const create = (name: string) => db.query("select pgmq.create(queue_name => $1)", [name]);
    const longest = `t_${"x".repeat(45)}`;
    await create(longest);
    await db.query("select pgmq.drop_queue(queue_name => $1)", [longest]);
    expect(await sqlState(create(`${longest}x`))).toBe("P0001");
    for (const bad of ["a;b", "a$b", "a--b", "a'b"]) expect(await sqlState(create(bad))).toBe("P0001");
    const injection = "x'; drop table pgmq.meta; --";
    expect(await sqlState(db.query("select pgmq.send(queue_name => $1, msg => '{}'::jsonb)", [injection]))).toBe("P0001");
    expect((await db.query("select to_regclass('pgmq.meta') is not null as ok")).rows[0].ok).toBe(true);
  });

  it("anon and authenticated cannot call pgmq functions or read queue tables", async () => {
    const q = await newQueue();
    const user = await newUser(db);
    const calls = [
      "select pgmq.create(queue_name => $1)",
      "select pgmq.send(queue_name => $1, msg => '{}'::jsonb)",
      "select * from pgmq.read(queue_name => $1, vt => 30, qty => 1)",
      "select * from pgmq.metrics(queue_name => $1)",
      `select * from pgmq.q_${q} where $1::text is not null`,
    ];
    for (const who of [{ role: "anon" as const }, { role: "authenticated" as const, user }]) {
      for (const sql of calls) {
        expect(await sqlState(asRole(db, who, (c) => c.query(sql, [q]))), `${who.role}: ${sql}`).toBe("42501");
      }
    }
  });

  it("service_role can send, read, archive and delete", async () => {
    const q = await newQueue();
    await asRole(db, { role: "service_role" }, async (c) => {
      const a = await send(q, { by: "service" }, 0, c);
      const b = await send(q, { by: "service" }, 0, c);
      expect((await read(q, 30, 2, c)).map((m) => m.msg_id)).toEqual([a, b]);
      await c.query("select pgmq.archive(queue_name => $1, msg_id => $2::bigint)", [q, a]);
      await c.query("select pgmq.delete(queue_name => $1, msg_id => $2::bigint)", [q, b]);
      const m = (await c.query("select * from pgmq.metrics(queue_name => $1)", [q])).rows[0];
      expect(m).toMatchObject({ queue_length: "0", total_messages: "2" });
    });
  });

  it("re-applying the stand-in keeps existing queues and messages", async (ctx) => {
    const real = await db.query("select 1 from pg_extension where extname = 'pgmq'");
    if (real.rowCount) ctx.skip();
    const q = await newQueue();
    const id = await send(q, { survives: true });
    await db.query(readFileSync(resolve(PROJECT_ROOT, "sql/standins/pgmq.sql"), "utf8"));
    expect(await read(q, 30, 1)).toEqual([expect.objectContaining({ msg_id: id, message: { survives: true } })]);
  });
});
