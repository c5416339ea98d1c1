/**
 * Zod schemas for every payload of the GPU cluster contract
 * (`gpu-cluster/openapi.yaml` is the normative description; these schemas
 * mirror it and tests/gpu/contract.test.ts checks that they agree).
 *
 * Used by the typed client (parsing what the cluster answers), by the
 * simulator (parsing what it is sent), by the webhook and upload-URL Edge
 * Functions, and re-exported to frontends and tests via `types/gpu-cluster.ts`.
 * Response schemas are not strict: unknown fields from a newer cluster are
 * dropped rather than rejected.
 */
export * from "./job.ts";
export * from "./events.ts";
