/**
 * What was validated is what trains (issues 15.1 and 15.6), end to end on
 * the embedded stack and its GPU simulator: a dataset whose bad lines the
 * owner tolerates (`max_invalid_fraction`) becomes ready, and its job
 * trains to success because dispatch tells the cluster which lines to skip,
 * in which format to read the rest and how to mask them (`dataset_spec`).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatasetSpec, Job } from "../../functions/_shared/gpu/types.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";
import { clusterJobsFor, driveDispatch, insertJobAsUser, jobRow, LLAMA } from "../jobs/fixtures.ts";
import { newDataset, upload, waitForVerdict } from "./helpers.ts";

const SLOW = 240_000;
const enc = (s: string) => new TextEncoder().encode(s);
const chat = (i: number) =>
  JSON.stringify({ messages: [{ role: "user", content: `How do I reset password ${i}?` }, { role: "assistant", content: `Open settings, then security (${i}).` }] });

describe("training on a tolerated dataset", () => {
  let db: pg.Client;
  let owner: LocalUser;
  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "tolerated");
  });
  afterAll(async () => {
    await db.end();
  });

  /** Create, dispatch and wait for the end of a job on the dataset; returns it with the cluster's job and the spec sent. */
  async function train(datasetId: string, validationDatasetId?: string): Promise<{ status: string; cluster: Job; spec: DatasetSpec }> {
    const job = await insertJobAsUser(db, owner, {
      dataset_id: datasetId, base_model_id: LLAMA, requested_config: { epochs: 1, batch_size: 4 },
      ...(validationDatasetId ? { validation_dataset_id: validationDatasetId } : {}),
    });
    await driveDispatch(db, job.id);
    const status = await waitFor(async () => {
      await db.query("select private.poll_tick()");
      const row = await jobRow(db, job.id);
      return ["succeeded", "failed", "cancelled", "timed_out"].includes(row.status) && row.status;
    }, { timeoutMs: 120_000, intervalMs: 500, what: `job ${job.id} to finish` });
    const [cluster] = await clusterJobsFor(job.id);
    const sent = await db.query("select request -> 'dataset_spec' as spec from private.training_job_dispatch where job_id = $1", [job.id]);
    return { status, cluster: cluster!, spec: sent.rows[0].spec as DatasetSpec };
  }

  it("a dataset with tolerated bad lines trains to success on exactly its valid examples", async () => {
    const lines = Array.from({ length: 30 }, (_, i) => chat(i));
    lines.splice(4, 0, "{'single': 'quotes'}"); // line 5: not JSON
    lines.splice(11, 0, JSON.stringify({ messages: [{ role: "human", content: "q" }, { role: "assistant", content: "a" }] })); // line 12: a JSON object, wrong role
    lines.splice(20, 0, JSON.stringify({ prompt: "p", completion: "c" })); // line 21: another format
    const { id, path } = await newDataset(db, owner, { maxInvalidFraction: 0.2 });
    expect((await upload(owner, path, enc(lines.join("\n") + "\n"))).error).toBeNull();
    const ready = await waitForVerdict(db, id);
    expect(ready.status).toBe("ready");
    expect(ready.stats!.lines).toMatchObject({ valid: 30, invalid: 3 });

    const { status, cluster, spec } = await train(id);
    expect(spec).toEqual({ line_format: "chat", chat_template: "llama3", train_on_inputs: false, message_weights: true, skip_lines: [5, 12, 21] });
    expect(status).toBe("succeeded");
    expect(cluster).toMatchObject({ status: "succeeded", examples: 30 });
    expect(cluster.trainable_tokens).toBeGreaterThan(0);
  }, SLOW);

  it("a validation dataset's tolerated bad lines are skipped too: the cluster evaluates on its valid examples", async () => {
    const toleratedDataset = async (lines: string[]) => {
      const { id, path } = await newDataset(db, owner, { maxInvalidFraction: 0.25 });
      expect((await upload(owner, path, enc(lines.join("\n")))).error).toBeNull();
      expect((await waitForVerdict(db, id)).status).toBe("ready");
      return id;
    };
    const training = await toleratedDataset(Array.from({ length: 20 }, (_, i) => chat(i)));
    const validation = await toleratedDataset([chat(100), "[1, 2]", ...Array.from({ length: 10 }, (_, i) => chat(200 + i)), "{oops"]);
    const { status, cluster, spec } = await train(training, validation);
    expect(spec).toMatchObject({ skip_lines: [], validation_skip_lines: [2, 13] });
    expect(status).toBe("succeeded");
    expect(cluster).toMatchObject({ examples: 20, validation_examples: 11 });
  }, SLOW);

  it("a re-upload without the bad lines forgets the old generation's skipped lines", async () => {
    const bad = [...Array.from({ length: 12 }, (_, i) => chat(i)), "not json"].join("\n");
    const { id, path } = await newDataset(db, owner, { maxInvalidFraction: 0 });
    expect((await upload(owner, path, enc(bad))).error).toBeNull();
    expect((await waitForVerdict(db, id)).status).toBe("error");
    expect((await db.query("select private.dataset_skip_lines($1) as l", [id])).rows[0].l).toEqual([13]);
    expect((await upload(owner, path, enc(Array.from({ length: 12 }, (_, i) => chat(i)).join("\n")), { upsert: true })).error).toBeNull();
    expect((await waitForVerdict(db, id)).status).toBe("ready");
    expect((await db.query("select private.dataset_skip_lines($1) as l", [id])).rows[0].l).toEqual([]);
  }, SLOW);

  it("a real ShareGPT file becomes ready as sharegpt and trains with its format and the model's chat template", async () => {
    const share = (i: number) => JSON.stringify({ conversations: [
      { from: "system", value: "You are a support agent." }, { from: "human", value: `Where is order ${i}?` }, { from: "gpt", value: `It ships tomorrow (${i}).` },
    ] });
    const { id, path } = await newDataset(db, owner, { fileName: "sharegpt.jsonl" });
    expect((await upload(owner, path, enc(Array.from({ length: 20 }, (_, i) => share(i)).join("\n")))).error).toBeNull();
    const ready = await waitForVerdict(db, id);
    expect(ready).toMatchObject({ status: "ready", format: "sharegpt" });
    expect(ready.stats!.roleCounts).toEqual({ system: 20, user: 20, assistant: 20 });

    const { status, cluster, spec } = await train(id);
    expect(spec).toMatchObject({ line_format: "sharegpt", chat_template: "llama3", train_on_inputs: false, skip_lines: [] });
    expect(status).toBe("succeeded");
    expect(cluster.examples).toBe(20);
  }, SLOW);
});
