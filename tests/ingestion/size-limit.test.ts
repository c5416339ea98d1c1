/**
 * One source for the dataset size limit (issue 15.5): the validator enforces
 * the lora-datasets bucket's `file_size_limit`, never a constant of its own.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initialState, finalize, processChunk } from "../../functions/_shared/dataset/engine.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { chatCorpus } from "./corpus.ts";
import { newDataset, runRow, upload, waitForVerdict } from "./helpers.ts";

const SLOW = 240_000;

describe("the dataset size limit", () => {
  let db: pg.Client;
  let owner: LocalUser;
  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "size-limit");
  });
  afterAll(async () => {
    await db.end();
  });

  it("a validation run enforces the bucket's file_size_limit, fixed in its options", async () => {
    const { id, path } = await newDataset(db, owner);
    expect((await upload(owner, path, chatCorpus(12, { seed: 3 }))).error).toBeNull();
    await waitForVerdict(db, id);
    const { rows } = await db.query("select file_size_limit::bigint as limit from storage.buckets where id = 'lora-datasets'");
    expect((await runRow(db, id))!.options.maxFileBytes).toBe(Number(rows[0].limit));
  }, SLOW);

  it("the validator's limit follows the bucket when an operator changes it, and disappears with it", async () => {
    const { id } = await newDataset(db, owner);
    await db.query("begin");
    try {
      await db.query("update storage.buckets set file_size_limit = 1048576 where id = 'lora-datasets'");
      const lowered = await db.query("select private.dataset_validation_options($1) as o", [id]);
      expect(lowered.rows[0].o.maxFileBytes).toBe(1048576);
      await db.query("update storage.buckets set file_size_limit = null where id = 'lora-datasets'");
      const none = await db.query("select private.dataset_validation_options($1) as o", [id]);
      expect(none.rows[0].o).not.toHaveProperty("maxFileBytes");
    } finally {
      await db.query("rollback");
    }
  });

  it("the engine has no limit of its own: a known size over 500 MiB fails only against a given maxFileBytes", () => {
    const big = 600 * 1024 * 1024;
    expect(initialState({ fileSize: big }).done).toBe(false);
    const limited = initialState({ fileSize: 2048, maxFileBytes: 1024 });
    expect(limited.done).toBe(true);
    const result = finalize(processChunk(limited, new Uint8Array(0), { isLast: true }).state);
    expect(result.report.errors).toEqual([expect.objectContaining({ code: "LT200", line: null, message: "The file is larger than 1,024 bytes" })]);
  });
});
