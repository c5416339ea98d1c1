/**
 * gpu-cluster/openapi.yaml is the contract: its references resolve, the zod
 * schemas declare the same fields, and what the simulator actually sends
 * (answers, error bodies, webhook events, upload-URL requests) validates
 * against it.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { type GpuSimulator, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import * as contract from "../../types/gpu-cluster.ts";
import { type FakeBackend, startFakeBackend } from "./support/backend.ts";
import { API_KEY, config, jsonl, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";

type Json = Record<string, unknown>;
const doc = parse(readFileSync(new URL("../../gpu-cluster/openapi.yaml", import.meta.url), "utf8")) as Json;
const schemas = (doc.components as Json).schemas as Record<string, Json>;

function resolvePointer(ref: string): unknown {
  return ref
    .slice(2)
    .split("/")
    .reduce<unknown>((node, seg) => (node as Json | undefined)?.[seg.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refs(n, out));
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

/** An OpenAPI component schema as a zod validator (refs rewritten to $defs for z.fromJSONSchema). */
const defs = JSON.parse(JSON.stringify(schemas).replaceAll('"#/components/schemas/', '"#/$defs/')) as Json;
function openapiSchema(name: string): z.ZodType {
  return z.fromJSONSchema({ $defs: defs, $ref: `#/$defs/${name}` } as Parameters<typeof z.fromJSONSchema>[0]);
}

/** Property names and required names of an object schema, following allOf and $ref. */
function fields(schema: Json): { properties: string[]; required: string[] } {
  if (typeof schema.$ref === "string") return fields(resolvePointer(schema.$ref) as Json);
  const parts = (schema.allOf as Json[] | undefined)?.map(fields) ?? [];
  const properties = [...Object.keys((schema.properties as Json | undefined) ?? {}), ...parts.flatMap((p) => p.properties)];
  const required = [...((schema.required as string[] | undefined) ?? []), ...parts.flatMap((p) => p.required)];
  return { properties: properties.sort(), required: required.sort() };
}

function zodFields(schema: z.ZodObject): { properties: string[]; required: string[] } {
  const entries = Object.entries(schema.shape as Record<string, z.ZodType>);
  return {
    properties: entries.map(([k]) => k).sort(),
    required: entries.filter(([, s]) => !s.safeParse(undefined).success).map(([k]) => k).sort(),
  };
}

describe("openapi.yaml", () => {
  it("is OpenAPI 3.1 and every $ref resolves", () => {
    expect(doc.openapi).toBe("3.1.0");
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(50);
    for (const ref of all) expect(resolvePointer(ref), ref).toBeDefined();
  });

  it("declares the operations the client calls and the simulator serves", () => {
    const paths = doc.paths as Record<string, Record<string, Json>>;
    const ops = Object.entries(paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => `${method.toUpperCase()} ${path} ${String(op.operationId)}`),
    );
    expect(ops.sort()).toEqual([
      "GET /health health",
      "GET /v1/jobs findJobs",
      "GET /v1/jobs/{job_id} getJob",
      "POST /v1/jobs submitJob",
      "POST /v1/jobs/{job_id}/cancel cancelJob",
    ]);
    const webhooks = doc.webhooks as Json;
    expect(Object.keys(webhooks).sort()).toEqual(["artifactUploadUrls", "jobEvent"]);
  });

  it.each([
    ["TrainingConfig", contract.GpuTrainingConfigSchema],
    ["SubmitJobRequest", contract.SubmitJobRequestSchema],
    ["ResumeFrom", contract.ResumeFromSchema],
    ["Progress", contract.ProgressSchema],
    ["MetricPoint", contract.MetricPointSchema],
    ["Checkpoint", contract.CheckpointSchema],
    ["EarlyStopping", contract.EarlyStoppingSchema],
    ["Artifact", contract.ArtifactSchema],
    ["JobError", contract.JobErrorSchema],
    ["Job", contract.JobSchema],
    ["JobList", contract.JobListSchema],
    ["UploadFile", contract.UploadFileSchema],
    ["UploadUrlsRequest", contract.UploadUrlsRequestSchema],
    ["UploadUrlsResponse", contract.UploadUrlsResponseSchema],
    ["ErrorBody", contract.ClusterErrorBodySchema],
  ] as const)("%s declares the same fields, and the same required ones, as its zod schema", (name, zod) => {
    expect(fields(schemas[name]!)).toEqual(zodFields(zod as unknown as z.ZodObject));
  });

  it("TrainingConfig's YAML and zod schema accept and refuse the same training options", () => {
    const yaml = openapiSchema("TrainingConfig");
    const samples: Array<[Partial<contract.GpuTrainingConfig> | Record<string, unknown>, boolean]> = [
      [{ quantization: "none" }, true],
      [{ quantization: "4bit" }, true],
      [{ quantization: "8bit" }, false],
      [{ lr_scheduler: "cosine_with_restarts", lr_scheduler_num_cycles: 3 }, true],
      [{ lr_scheduler_num_cycles: 0 }, false],
      [{ validation: { split_fraction: 0.1 } }, true],
      [{ validation: { split_fraction: 0.5 } }, true],
      [{ validation: { split_fraction: 0 } }, false],
      [{ validation: { split_fraction: 0.6 } }, false],
      [{ validation: { dataset_url: "https://storage.example/sign/val.jsonl?token=t" } }, true],
      [{ validation: { dataset_url: "not a url" } }, false],
      [{ validation: { split_fraction: 0.1, dataset_url: "https://storage.example/v.jsonl" } }, false],
      [{ validation: {} }, false],
      [{ early_stopping_patience: 0 }, true],
      [{ early_stopping_patience: null }, true],
      [{ early_stopping_patience: -1 }, false],
      [{ early_stopping_patience: 1.5 }, false],
    ];
    for (const [over, valid] of samples) {
      const sample = { ...config(), ...over };
      expect(yaml.safeParse(sample).success, `YAML ${JSON.stringify(over)}`).toBe(valid);
      expect(contract.GpuTrainingConfigSchema.safeParse(sample).success, `zod ${JSON.stringify(over)}`).toBe(valid);
    }
  });

  it("has the same webhook event types as the zod schemas, each with the same data fields", () => {
    const event = schemas.WebhookEvent!;
    const mapping = (event.discriminator as { mapping: Record<string, string> }).mapping;
    expect(Object.keys(mapping).sort()).toEqual([...contract.GPU_WEBHOOK_EVENT_TYPES].sort());
    for (const option of contract.GpuWebhookEventSchema.options) {
      const type = option.shape.type.value;
      const yamlEvent = resolvePointer(mapping[type]!) as Json;
      const yamlData = fields((yamlEvent.properties as Json).data as Json);
      expect(yamlData, type).toEqual(zodFields(option.shape.data as unknown as z.ZodObject));
    }
  });
});

describe("the simulator's traffic conforms to openapi.yaml", () => {
  let sim: GpuSimulator;
  let backend: FakeBackend;
  const call = (path: string, init: RequestInit = {}, key = API_KEY) =>
    fetch(`${sim.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...(init.headers as Json) },
    });
  const declared = (path: string, method: string, status: number) =>
    Object.keys(((doc.paths as Json)[path] as Record<string, { responses: Json }>)[method]!.responses).includes(String(status));

  beforeAll(async () => {
    backend = await startFakeBackend({ webhookSecret: WEBHOOK_SECRET });
    sim = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 5000, tickMs: 10, progressIntervalSeconds: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await backend?.close();
  });

  it("job resources, replays and lookups", async () => {
    const body = JSON.stringify(
      submitBody(backend.dataset("c.jsonl", jsonl(100)), {
        callback_url: backend.webhookUrl,
        upload_urls_callback_url: backend.uploadUrlsUrl,
        metadata: { training_job_id: "tj_1" },
      }),
    );
    const created = await call("/v1/jobs", { method: "POST", body, headers: { "idempotency-key": "contract-1" } });
    expect(created.status).toBe(201);
    const job = openapiSchema("Job").parse(await created.json()) as contract.Job;
    expect(created.headers.get("location")).toBe(`/v1/jobs/${job.id}`);

    const replay = await call("/v1/jobs", { method: "POST", body, headers: { "idempotency-key": "contract-1" } });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    openapiSchema("Job").parse(await replay.json());

    const done = await waitFor(async () => {
      const j = (await (await call(`/v1/jobs/${job.id}`)).json()) as contract.Job;
      return j.status === "succeeded" ? j : undefined;
    });
    openapiSchema("Job").parse(done);
    expect(done.metadata).toEqual({ training_job_id: "tj_1" });
    const found = await call("/v1/jobs?idempotency_key=contract-1");
    openapiSchema("JobList").parse(await found.json());

    await waitFor(() => backend.events.some((e) => e.event.type === "job.succeeded"));
    await sim.webhooks.idle();
    const types = new Set(backend.events.map((e) => e.event.type));
    expect([...types].sort()).toEqual(["job.checkpoint", "job.progress", "job.started", "job.succeeded"]);
    for (const e of backend.events) openapiSchema("WebhookEvent").parse(e.event);
    for (const r of backend.uploadRequests) openapiSchema("UploadUrlsRequest").parse(r);
    expect(backend.uploadRequests).toHaveLength(1);
  });

  it("a job with QLoRA, restarts, a validation split and early stopping, and its events", async () => {
    const options = {
      quantization: "4bit", lr_scheduler: "cosine_with_restarts", lr_scheduler_num_cycles: 2, epochs: 3, eval_every_steps: 5,
      validation: { split_fraction: 0.2 }, early_stopping_patience: 1,
    } as const;
    const body = submitBody(backend.dataset("o.jsonl", jsonl(200)), { config: config(options), callback_url: backend.webhookUrl, upload_urls_callback_url: backend.uploadUrlsUrl });
    const created = await call("/v1/jobs", { method: "POST", body: JSON.stringify(body) });
    expect(created.status).toBe(201);
    const job = openapiSchema("Job").parse(await created.json()) as contract.Job;
    expect(job.config).toMatchObject(options);
    const done = await waitFor(async () => {
      const j = (await (await call(`/v1/jobs/${job.id}`)).json()) as contract.Job;
      return j.status === "succeeded" ? j : undefined;
    });
    openapiSchema("Job").parse(done);
    expect(done).toMatchObject({ examples: 160, validation_examples: 40, early_stopping: { patience: 1, stopped_early: true } });
    await waitFor(() => backend.events.some((e) => e.event.type === "job.succeeded" && e.event.data.job_id === job.id));
    await sim.webhooks.idle();
    const events = backend.events.filter((e) => e.event.data.job_id === job.id);
    for (const e of events) openapiSchema("WebhookEvent").parse(e.event);
    expect(events.find((e) => e.event.type === "job.succeeded")!.event.data).toMatchObject({ early_stopping: { stopped_early: true } });
  });

  it("error bodies, statuses and Retry-After headers", async () => {
    const good = submitBody(backend.dataset("e.jsonl", jsonl(10)));
    await call("/v1/jobs", { method: "POST", body: JSON.stringify(good), headers: { "idempotency-key": "contract-2" } });
    sim.setFaults({
      script: [
        { fault: "rate_limit", on: "get", retryAfterSeconds: 4 },
        { fault: "capacity", on: "submit", retryAfterSeconds: 9 },
      ],
    });
    const cases: Array<[string, string, () => Promise<Response>, number, string]> = [
      ["/v1/jobs", "post", () => call("/v1/jobs", { method: "POST", body: "{" }), 400, "invalid_request"],
      ["/v1/jobs/{job_id}", "get", () => call("/v1/jobs/job_x", {}, "wrong-key"), 401, "unauthorized"],
      ["/v1/jobs/{job_id}", "get", () => call("/v1/jobs/job_x"), 429, "rate_limited"],
      ["/v1/jobs/{job_id}", "get", () => call("/v1/jobs/job_missing"), 404, "job_not_found"],
      ["/v1/jobs/{job_id}", "get", () => call("/v1/jobs/job_x?metrics_since_step=-1"), 400, "invalid_request"],
      ["/v1/jobs", "get", () => call("/v1/jobs"), 400, "invalid_request"],
      ["/v1/jobs", "post", () => call("/v1/jobs", { method: "POST", body: JSON.stringify({ ...good, config: config({ r: 0 }) }) }), 422, "invalid_config"],
      ["/v1/jobs", "post", () => call("/v1/jobs", { method: "POST", body: JSON.stringify({ ...good, config: config({ r: 4 }) }), headers: { "idempotency-key": "contract-2" } }), 409, "idempotency_key_reused"],
      ["/v1/jobs", "post", () => call("/v1/jobs", { method: "POST", body: JSON.stringify(good) }), 503, "capacity_unavailable"],
    ];
    for (const [path, method, request, status, code] of cases) {
      const res = await request(); // one at a time: the scripted faults hit the next matching request
      expect(res.status, `${method} ${path} ${code}`).toBe(status);
      expect(declared(path, method, status), `${status} declared for ${method} ${path}`).toBe(true);
      const body = openapiSchema("ErrorBody").parse(await res.json()) as contract.ClusterErrorBody;
      expect(body.error.code).toBe(code);
      expect(body.error.retryable).toBe(status === 429 || status === 503);
      if (status === 429) expect(res.headers.get("retry-after")).toBe("4");
      if (status === 503) expect(res.headers.get("retry-after")).toBe("9");
    }
  });
});
