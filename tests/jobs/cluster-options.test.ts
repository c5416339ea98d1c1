/**
 * QLoRA, cosine with restarts, validation data and early stopping end to end
 * on the embedded stack: a client creates the job, the dispatch worker
 * submits it, and the GPU cluster simulator (its admin API, `/_sim/jobs`)
 * holds the matching contract fields and reads the data: the validation
 * split out of the training file, or the validation dataset through its own
 * signed URL. A validation file gone from Storage fails dispatch (LT310).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../../functions/_shared/gpu/types.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { waitFor } from "../helpers/wait.ts";
import { clusterJobsFor, driveDispatch, insertJobAsUser, jsonl, LLAMA, readyDataset, DISPATCHED,
} from "./fixtures.ts";

describe("training options on the GPU cluster", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  /** The job's one cluster-side job, once the cluster has read its data. */
  const clusterJobWithData = (jobId: string): Promise<Job> =>
    waitFor(async () => {
      const jobs = await clusterJobsFor(jobId);
      return jobs.length === 1 && jobs[0]!.examples !== null && jobs[0]!;
    }, { timeoutMs: 20_000, what: `the cluster to read the data of job ${jobId}` });

  it("QLoRA with restarts, a validation split and early stopping reach the cluster, which trains on the rest", async () => {
    const user = await newUser(db, "options-split");
    const dataset = await readyDataset(db, user); // 1,000 examples in the statistics, 50 lines in the file
    const requested = {
      epochs: 2, quantization: "4bit", lr_scheduler: "cosine_with_restarts", validation: { split_fraction: 0.1 }, early_stopping_patience: 2,
    };
    const job = await insertJobAsUser(db, user, { dataset_id: dataset.id, base_model_id: LLAMA, requested_config: requested });
    expect(job.config).toMatchObject(requested);
    expect(job.total_steps).toBe(225); // ceil(900 x 2 / 8): 100 of the 1,000 examples held out
    expect(DISPATCHED).toContain((await driveDispatch(db, job.id)).status);
    const cluster = await clusterJobWithData(job.id);
    expect(cluster.config).toMatchObject({
      quantization: "4bit", lr_scheduler: "cosine_with_restarts", lr_scheduler_num_cycles: 2, epochs: 2,
      validation: { split_fraction: 0.1 }, early_stopping_patience: 2, warmup_steps: 7, eval_every_steps: 12,
    });
    expect(cluster).toMatchObject({ examples: 45, validation_examples: 5 });
    // The speed the estimate assumed for a 4-bit run, not the catalog's bf16 figure.
    const catalog = (await db.query<{ t: number }>("select throughput_tokens_per_second::float8 as t from public.base_models where id = $1", [LLAMA])).rows[0]!.t;
    expect(cluster.config.expected_tokens_per_second).toBeCloseTo(catalog * 0.8, 3);
  });

  it("a validation dataset is sent as its own signed URL, which the cluster downloads", async () => {
    const user = await newUser(db, "options-valset");
    const dataset = await readyDataset(db, user);
    const validation = await readyDataset(db, user, { examples: 12, totalTokens: 6_000, maxTokens: 600 });
    const job = await insertJobAsUser(db, user, {
      dataset_id: dataset.id, validation_dataset_id: validation.id, base_model_id: LLAMA, requested_config: { early_stopping_patience: 3 },
    });
    expect(DISPATCHED).toContain((await driveDispatch(db, job.id)).status);
    const cluster = await clusterJobWithData(job.id);
    expect(cluster).toMatchObject({ examples: 50, validation_examples: 12, config: { early_stopping_patience: 3, quantization: "none" } });
    const url = (cluster.config.validation as { dataset_url: string }).dataset_url;
    expect(url.startsWith(`${testStack().API_URL}/storage/v1/object/sign/lora-datasets/${validation.path}?`)).toBe(true);
    const download = await fetch(url);
    expect(download.status).toBe(200);
    expect(await download.text()).toBe(jsonl(12));
    const saved = (await db.query(
      "select request #>> '{config,validation,dataset_url}' as url, dataset_url_expires_at from private.training_job_dispatch where job_id = $1",
      [job.id],
    )).rows[0] as { url: string; dataset_url_expires_at: Date };
    expect(saved.url).toBe(url);
    expect(saved.dataset_url_expires_at.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
  });

  it("fails the job for the user when its validation dataset file is gone from Storage (LT310)", async () => {
    const user = await newUser(db, "options-valgone");
    const dataset = await readyDataset(db, user);
    const validation = await readyDataset(db, user, undefined, { upload: false });
    const job = await insertJobAsUser(db, user, { dataset_id: dataset.id, validation_dataset_id: validation.id, base_model_id: LLAMA });
    const failed = await driveDispatch(db, job.id);
    expect(failed).toMatchObject({ status: "failed", error: { code: "LT310", kind: "user" } });
    expect(failed.error!.message).toBe(
      `The validation dataset file "${validation.path}" is no longer in Storage; upload it again as a new dataset and create a new job`,
    );
    expect(await clusterJobsFor(job.id)).toHaveLength(0);
  });
});
