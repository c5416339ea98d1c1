/**
 * The GPU a job runs on is the one its quote names: the catalog's GPU types
 * map to the GPU cluster's names (private.cluster_gpus), an enabled model
 * must use one the cluster offers (LT330), and dispatch never leaves
 * gpu_type out (the cluster would pick its default GPU). End to end on the
 * stack's GPU simulator for llama-3.2-3b-instruct, listed on nvidia-l4.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SUPPORTED_GPUS } from "../../gpu-cluster/simulator/training.ts";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { clusterJobsFor, jobRow, readyDataset } from "./fixtures.ts";

const L4_MODEL = "llama-3.2-3b-instruct";

describe("GPU types between the catalog and the GPU cluster", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("a job on llama-3.2-3b-instruct runs on the L4 its quote names, not on the cluster's default GPU", async () => {
    const user = await newUser(db, "gpu");
    const dataset = await readyDataset(db, user, { examples: 200, totalTokens: 40_000, maxTokens: 300 });
    // What the client is shown, through supabase-js.
    const { data: quote, error } = await supabaseClient(testStack().ANON_KEY, user.token)
      .rpc("quote_training_job", { dataset_id: dataset.id, base_model_id: L4_MODEL });
    expect(error).toBeNull();
    expect((quote as { estimate: { gpu_type: string } }).estimate.gpu_type).toBe("nvidia-l4");

    const id = randomUUID();
    await db.query("insert into public.training_jobs (id, user_id, dataset_id, base_model_id) values ($1, $2, $3, $4)",
      [id, user.id, dataset.id, L4_MODEL]);
    const job = await waitFor(async () => {
      const j = await jobRow(db, id);
      return j.external_job_id !== null && j;
    }, { timeoutMs: 30_000, what: "the job to reach the cluster" });
    const [cluster] = await clusterJobsFor(id);
    expect(cluster!.id).toBe(job.external_job_id);
    expect(cluster!.config.gpu_type).toBe("L4-24GB");
    expect(cluster!.gpu_type).toBe("L4-24GB");
  });

  it("every enabled catalog model runs on a GPU the cluster offers, under the cluster's own name", async () => {
    const { rows } = await db.query<{ id: string; gpu_type: string; cluster: string | null }>(
      "select id, gpu_type, private.cluster_gpu_type(gpu_type) as cluster from public.base_models where enabled order by id");
    expect(rows.length).toBeGreaterThan(0);
    for (const m of rows) {
      expect(m.cluster, `${m.id} on ${m.gpu_type}`).not.toBeNull();
      expect(Object.keys(SUPPORTED_GPUS), `${m.id} on ${m.gpu_type}`).toContain(m.cluster);
    }
  });

  const model = (id: string, gpuType: string, enabled: boolean) =>
    db.query(
      `insert into public.base_models (id, display_name, family, hf_repo, parameter_count, context_length, tokenizer,
         lora_target_modules, default_target_modules, max_lora_rank, hyperparameters, gpu_type, gpu_count,
         price_per_gpu_hour, throughput_tokens_per_second, enabled)
       select $1, 'Test model', family, hf_repo, parameter_count, context_length, tokenizer, lora_target_modules,
         default_target_modules, max_lora_rank, hyperparameters, $2, 1, 1, 1000, $3
         from public.base_models where id = 'llama-3.1-8b-instruct'`, [id, gpuType, enabled]);

  it("refuses an enabled model on a GPU the cluster does not offer (LT330), and removing a GPU enabled models use", async () => {
    await asRole(db, { role: "service_role" }, async () => {
      expect(await sqlState(model("test-b200-model", "nvidia-b200", true))).toBe("LT330");
    });
    await asRole(db, { role: "service_role" }, async (c) => {
      // Listed disabled, it may wait for the cluster to offer its GPU; enabling it is refused.
      await model("test-b200-model", "nvidia-b200", false);
      expect(await sqlState(c.query("update public.base_models set enabled = true where id = 'test-b200-model'"))).toBe("LT330");
    });
    await db.query("begin");
    try {
      await expect(db.query("delete from private.cluster_gpus where gpu_type = 'nvidia-l4'")).rejects.toMatchObject({
        code: "LT330", message: expect.stringContaining(L4_MODEL),
      });
    } finally {
      await db.query("rollback");
    }
  });

  it("dispatch always names the GPU: a mapping removed after admission sends the catalog's name, which the cluster refuses", async () => {
    const user = await newUser(db, "gpu");
    const dataset = await readyDataset(db, user, undefined, { upload: false });
    await db.query("begin");
    try {
      await db.query("insert into private.cluster_gpus (gpu_type, cluster_gpu_type, memory_gb) values ('nvidia-test-gpu', 'TEST-GPU', 40)");
      await model("test-gpu-model", "nvidia-test-gpu", true);
      const { rows: [j] } = await db.query<{ id: string }>(
        "insert into public.training_jobs (user_id, dataset_id, base_model_id, status) values ($1, $2, 'test-gpu-model', 'pending') returning id",
        [user.id, dataset.id]);
      const gpu = async () => (await db.query<{ c: { gpu_type?: string } }>("select private.cluster_job_config($1) as c", [j!.id])).rows[0]!.c.gpu_type;
      expect(await gpu()).toBe("TEST-GPU");
      await db.query("update public.base_models set enabled = false where id = 'test-gpu-model'");
      await db.query("delete from private.cluster_gpus where gpu_type = 'nvidia-test-gpu'");
      expect(await gpu()).toBe("nvidia-test-gpu");
    } finally {
      await db.query("rollback");
    }
  });
});
