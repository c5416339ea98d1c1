import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AppError, ConflictError, MethodNotAllowedError, NotFoundError, ValidationError, toErrorBody, toErrorResponse,
} from "../../functions/_shared/errors.ts";
import { loadEnv } from "../../functions/_shared/env.ts";
import { json, preflight, success } from "../../functions/_shared/http.ts";

describe("functions/_shared/errors.ts", () => {
  it("toErrorResponse() turns an AppError subclass into its status and { error: { code, message, details } }", async () => {
    const res = toErrorResponse(new ConflictError('Cannot cancel job "j1": already finished', { details: { status: "succeeded" } }));
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({
      error: { code: "conflict", message: 'Cannot cancel job "j1": already finished', details: { status: "succeeded" } },
    });
  });

  it("subclasses carry their default code and status, their name, and the cause", () => {
    const cause = new Error("row not found");
    const err = new NotFoundError('Dataset "d1" not found', { cause });
    expect(err).toBeInstanceOf(AppError);
    expect([err.name, err.code, err.status, err.cause]).toEqual(["NotFoundError", "not_found", 404, cause]);
    expect(new MethodNotAllowedError("x", { code: "custom" }).code).toBe("custom");
  });

  it("toErrorBody() maps zod errors to 400 invalid_request with the failing paths", () => {
    const parsed = z.object({ rank: z.number().int().positive() }).safeParse({ rank: -1 });
    expect(parsed.success).toBe(false);
    const body = toErrorBody(parsed.error);
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.details).toEqual([expect.objectContaining({ path: "rank" })]);
  });

  it("toErrorResponse() hides the message of an unexpected error behind a 500", async () => {
    const res = toErrorResponse(new Error("password=hunter2 in connection string"));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "internal_error", message: "Internal error" } });
  });

  it("toErrorResponse() merges extra headers such as CORS", () => {
    const res = toErrorResponse(new ValidationError("Bad"), { headers: { "access-control-allow-origin": "*" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("functions/_shared/http.ts", () => {
  it("success() wraps data as { success: true, data } with JSON and CORS headers", async () => {
    const res = success({ id: 1 }, { status: 201 });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.json()).toEqual({ success: true, data: { id: 1 } });
  });

  it("json() lets the caller override headers", () => {
    expect(json({}, { headers: { "access-control-allow-origin": "https://app.example" } }).headers.get("access-control-allow-origin"))
      .toBe("https://app.example");
  });

  it("preflight() answers OPTIONS with 204 and nothing else", () => {
    expect(preflight(new Request("http://x/f", { method: "OPTIONS" }))?.status).toBe(204);
    expect(preflight(new Request("http://x/f", { method: "POST" }))).toBeNull();
  });
});

describe("functions/_shared/env.ts", () => {
  const valid = {
    SUPABASE_URL: "http://127.0.0.1:54321",
    SUPABASE_ANON_KEY: "anon",
    SUPABASE_SERVICE_ROLE_KEY: "service",
    SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
  };

  it("loadEnv() returns the typed platform variables and leaves the GPU cluster optional", () => {
    expect(loadEnv({ ...valid, UNRELATED: "x" })).toEqual(valid);
  });

  it("loadEnv() fails fast naming every missing or invalid variable, without their values", () => {
    let thrown: unknown;
    try {
      loadEnv({ ...valid, SUPABASE_DB_URL: "mysql://secret@db", SUPABASE_ANON_KEY: undefined });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AppError);
    const e = thrown as AppError;
    expect(e.code).toBe("config_error");
    expect(e.message).toContain("SUPABASE_DB_URL");
    expect(e.message).toContain("SUPABASE_ANON_KEY");
    expect(e.message).not.toContain("secret@db");
  });
});
