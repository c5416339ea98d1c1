/**
 * Object bytes on local disk, laid out like real Storage's file backend:
 * `<root>/objects/<bucket>/<name>/<version>`. Every upload gets a new
 * version, so an overwrite never touches the bytes the current row points at
 * until the new row is committed. Uploads are streamed to `<root>/tmp/`
 * (hashing as they go) and renamed into place.
 */
import { createHash, randomUUID, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { ERRORS } from "./errors.ts";

export class FileStore {
  readonly objectsDir: string;
  readonly tmpDir: string;

  constructor(root: string) {
    this.objectsDir = resolve(root, "objects");
    this.tmpDir = resolve(root, "tmp");
  }

  async init(): Promise<void> {
    await mkdir(this.objectsDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** Where the bytes of one object version live. */
  pathOf(bucket: string, name: string, version: string): string {
    const parts = [bucket, ...name.split("/"), version];
    if (parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\0"))) throw ERRORS.invalidKey(name);
    const path = resolve(this.objectsDir, ...parts);
    if (!path.startsWith(this.objectsDir + sep)) throw ERRORS.invalidKey(name);
    return path;
  }

  /** A new temporary file to stream an upload into. */
  async createTemp(): Promise<TempFile> {
    const path = join(this.tmpDir, randomUUID());
    const out = createWriteStream(path, { flags: "wx" });
    await new Promise<void>((ok, fail) => {
      out.once("open", () => ok());
      out.once("error", fail);
    });
    return new TempFile(path, out);
  }

  /** Move a finished upload to its version path. */
  async place(temp: TempFile, bucket: string, name: string, version: string): Promise<string> {
    const dest = this.pathOf(bucket, name, version);
    await mkdir(dirname(dest), { recursive: true });
    await rename(temp.path, dest);
    return dest;
  }

  /** Remove one version's bytes (missing is fine) and the folders it leaves empty. */
  async remove(bucket: string, name: string, version: string | null): Promise<void> {
    if (!version) return;
    let path: string;
    try {
      path = this.pathOf(bucket, name, version);
    } catch {
      return;
    }
    await rm(path, { force: true });
    const bucketDir = resolve(this.objectsDir, bucket);
    for (let dir = dirname(path); dir.startsWith(bucketDir + sep) || dir === bucketDir; dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  /** Size of a stored version, or undefined when its bytes are gone. */
  async sizeOf(bucket: string, name: string, version: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(bucket, name, version))).size;
    } catch {
      return undefined;
    }
  }

  /** Stream `[start, end]` (inclusive) of a stored version. */
  open(bucket: string, name: string, version: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.pathOf(bucket, name, version), range);
  }
}

/** An upload in progress: written with backpressure, counted and MD5-hashed. */
export class TempFile {
  size = 0;
  private readonly hash: Hash = createHash("md5");
  private closed = false;

  constructor(
    readonly path: string,
    private readonly out: WriteStream,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    this.hash.update(chunk);
    if (!this.out.write(chunk)) {
      await new Promise<void>((ok, fail) => {
        const onDrain = () => {
          this.out.off("error", onError);
          ok();
        };
        const onError = (e: Error) => {
          this.out.off("drain", onDrain);
          fail(e);
        };
        this.out.once("drain", onDrain);
        this.out.once("error", onError);
      });
    }
  }

  /** Flush and close; returns the ETag real Storage's file backend reports (quoted MD5). */
  async finish(): Promise<string> {
    await this.close();
    return `"${this.hash.digest("hex")}"`;
  }

  /** Close and delete (after a failed upload). */
  async discard(): Promise<void> {
    await this.close().catch(() => {});
    await rm(this.path, { force: true });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((ok, fail) => this.out.end((e?: Error | null) => (e ? fail(e) : ok())));
  }
}
