/**
 * GPU cluster contract types (zod schemas and their inferred types) for
 * frontends and tests. The source is `functions/_shared/gpu/types.ts`;
 * `gpu-cluster/openapi.yaml` is the normative description.
 */
export * from "../functions/_shared/gpu/types.ts";
