/**
 * Demo step 5: the same run seen by a database administrator, through the
 * ops schema (docs/OPERATIONS.md) over a direct Postgres connection: queues,
 * cron jobs, failures and what the demo user has spent.
 */
import pg from "pg";
import type { Screen } from "./ui.ts";
import { table } from "./ui.ts";

export async function operatorView(screen: Screen, dbUrl: string): Promise<void> {
  const db = new pg.Client({ connectionString: dbUrl, application_name: "demo (DBA)" });
  await db.connect();
  try {
    screen.section("5. As the DBA (ops schema)");
    const queues = (await db.query<{ queue_name: string; worker: string | null; messages: string; archived: string }>(
      "select queue_name, worker, messages, archived from ops.queue_health order by queue_name")).rows;
    screen.ok("select * from ops.queue_health");
    screen.detail(table(screen.term, [["queue", "worker", "messages", "archived"],
      ...queues.map((q) => [q.queue_name, q.worker ?? "", q.messages, q.archived])], { rightAlign: [2, 3] }));
    const usage = (await db.query<{ email: string; month: string; gpu_hours: string; charged: string; currency: string; jobs: string }>(
      "select email, month::text, gpu_hours, charged, currency, jobs from ops.usage_by_user_month")).rows;
    screen.ok("select * from ops.usage_by_user_month");
    screen.detail(table(screen.term, [["user", "month", "GPU hours", "charged", "jobs"],
      ...usage.map((u) => [u.email, u.month, u.gpu_hours, `${u.charged} ${u.currency}`, u.jobs])], { rightAlign: [2, 3, 4] }));
    const cron = (await db.query<{ health: string; n: number }>(
      "select health, count(*)::int as n from ops.cron_job_health group by health order by health")).rows;
    const stuck = (await db.query<{ n: number }>("select count(*)::int as n from ops.stuck_jobs")).rows[0]!.n;
    const failures = (await db.query<{ n: number }>("select coalesce(sum(total), 0)::int as n from ops.failures_by_code")).rows[0]!.n;
    screen.ok(`cron jobs: ${cron.map((c) => `${c.n} ${c.health}`).join(", ")}; stuck jobs: ${stuck}; failures: ${failures}`);
  } finally {
    await db.end();
  }
}
