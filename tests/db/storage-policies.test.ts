/**
 * Storage buckets and storage.objects policies for the pipeline, exercised
 * at the SQL level as the Storage API runs them (the caller's role and JWT
 * claims, then an insert/update/select on storage.objects).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { actAs, actAsAdmin, attempt, rolledBack, seedDataset, seedWorld, type World } from "./lora-fixtures.ts";

const upload = (db: pg.ClientBase, name: string) =>
  attempt(db, "insert into storage.objects (bucket_id, name, owner_id, metadata) values ('lora-datasets', $1, auth.uid()::text, '{}')", [name]);

describe("storage buckets and policies", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("both buckets are private; lora-datasets takes up to 500 MiB of JSONL as supabase-js sends it", async () => {
    const { rows } = await db.query(
      "select id, public, file_size_limit::bigint as limit, allowed_mime_types from storage.buckets where id like 'lora-%' order by id",
    );
    expect(rows).toHaveLength(2);
    const [datasets, models] = rows;
    expect(datasets).toMatchObject({ id: "lora-datasets", public: false, limit: String(500 * 1024 * 1024) });
    // A File/Blob with no known type arrives as application/octet-stream; a string or
    // Buffer body with supabase-js's default contentType, compared literally by Storage.
    expect(datasets.allowed_mime_types).toEqual(expect.arrayContaining([
      "application/octet-stream", "text/plain;charset=UTF-8", "text/plain", "application/jsonl", "application/x-ndjson", "application/json",
    ]));
    expect(models).toMatchObject({ id: "lora-models", public: false });
  });

  describe("uploads to lora-datasets", () => {
    const cases: Array<[string, (w: World, deleted: string) => string]> = [
      ["another user's folder", (w) => `${w.other.id}/${w.otherDataset}/train.jsonl`],
      ["the owner's folder with another user's dataset", (w) => `${w.owner.id}/${w.otherDataset}/train.jsonl`],
      ["a dataset that is not awaiting upload", (w) => `${w.owner.id}/${w.dataset.ready}/train.jsonl`],
      ["a soft-deleted dataset", (w, deleted) => `${w.owner.id}/${deleted}/train.jsonl`],
      ["a file name other than the dataset's", (w) => `${w.owner.id}/${w.dataset.empty}/other.jsonl`],
      ["a sub-folder", (w) => `${w.owner.id}/${w.dataset.empty}/sub/train.jsonl`],
      ["a '..' segment", (w) => `${w.owner.id}/${w.dataset.empty}/../${w.dataset.empty}/train.jsonl`],
      ["a leading '..' into another user's folder", (w) => `${w.owner.id}/../${w.other.id}/${w.otherDataset}/train.jsonl`],
      ["an encoded slash", (w) => `${w.owner.id}/${w.dataset.empty}%2Ftrain.jsonl`],
      ["an encoded dot-dot", (w) => `${w.owner.id}/${w.dataset.empty}/%2E%2E/train.jsonl`],
      ["backslashes", (w) => `${w.owner.id}\\${w.dataset.empty}\\train.jsonl`],
      ["an empty segment", (w) => `${w.owner.id}//${w.dataset.empty}/train.jsonl`],
      ["the folder itself", (w) => `${w.owner.id}/${w.dataset.empty}`],
    ];
    for (const [what, path] of cases) {
      it(`refuses ${what} (42501)`, async () => {
        const r = await rolledBack(db, async () => {
          const w = await seedWorld(db);
          const deleted = await seedDataset(db, w.owner.id, "uploading");
          await db.query("update public.datasets set deleted_at = now() where id = $1", [deleted]);
          await actAs(db, "owner", w);
          return await upload(db, path(w, deleted));
        });
        expect(r.code).toBe("42501");
      });
    }

    it("accepts the dataset's own storage_path while it awaits upload", async () => {
      const r = await rolledBack(db, async () => {
        const w = await seedWorld(db);
        await actAs(db, "owner", w);
        return await upload(db, w.datasetPath.empty);
      });
      expect(r).toMatchObject({ rowCount: 1 });
    });

    it("accepts a new file over a dataset whose validation failed, as insert and as update (a re-upload)", async () => {
      const r = await rolledBack(db, async () => {
        const w = await seedWorld(db);
        await db.query("update public.datasets set status = 'validating' where id = $1", [w.dataset.uploading]);
        await db.query("update public.datasets set status = 'error' where id = $1", [w.dataset.uploading]);
        await db.query("update public.datasets set status = 'validating' where id = $1", [w.dataset.empty]);
        await db.query("update public.datasets set status = 'error' where id = $1", [w.dataset.empty]);
        await actAs(db, "owner", w);
        const replaced = await attempt(db, "update storage.objects set metadata = '{}' where bucket_id = 'lora-datasets' and name = $1", [
          w.datasetPath.uploading,
        ]);
        const inserted = await upload(db, w.datasetPath.empty);
        return { replaced: replaced.rowCount, inserted: inserted.rowCount };
      });
      expect(r).toEqual({ replaced: 1, inserted: 1 });
    });

    it("refuses to replace the file once validation has started", async () => {
      const r = await rolledBack(db, async () => {
        const w = await seedWorld(db);
        await db.query("update public.datasets set status = 'validating' where id = $1", [w.dataset.uploading]);
        await actAs(db, "owner", w);
        return await attempt(db, "update storage.objects set metadata = '{}' where bucket_id = 'lora-datasets' and name = $1", [
          w.datasetPath.uploading,
        ]);
      });
      expect(r).toEqual({ rowCount: 0, rows: [] });
    });
  });

  it("objects with traversal-looking names are invisible even inside the owner's folder", async () => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await db.query(
        "insert into storage.objects (bucket_id, name) values ('lora-models', $1), ('lora-models', $2)",
        [`${w.owner.id}/../${w.other.id}/x.bin`, `${w.owner.id}/${w.job}/ok.bin`],
      );
      await actAs(db, "owner", w);
      const visible = await db.query("select name from storage.objects where bucket_id = 'lora-models' order by name");
      await actAsAdmin(db);
      return { names: visible.rows.map((x) => x.name as string), w };
    });
    expect(r.names).toEqual([r.w.modelObject, `${r.w.owner.id}/${r.w.job}/ok.bin`].sort());
  });
});
