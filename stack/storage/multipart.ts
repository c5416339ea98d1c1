/**
 * Streaming `multipart/form-data` reader for uploads (what supabase-js sends
 * for Blob/File bodies: a `cacheControl` field, an optional `metadata` field,
 * then the file). Like @fastify/multipart's `request.file()`, it takes the
 * first file part and the fields that precede it; file bytes go to `sink` as
 * they arrive, never buffered whole.
 */

export type FilePart = { fieldName: string; filename: string; contentType: string | undefined };

export type MultipartHandlers = {
  /** Called when the file part's headers are read; may reject (validation, permissions). */
  onFile: (part: FilePart, fields: Record<string, string>) => Promise<void>;
  /** Receives the file's bytes in order. */
  sink: (chunk: Buffer) => Promise<void>;
};

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_FIELD_BYTES = 1024 * 1024 + 1024;

/** The boundary of a multipart content type, or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data/i.test(contentType)) return undefined;
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2])!.trim() : undefined;
}

type State = "preamble" | "afterDelimiter" | "headers" | "body" | "done";
type Part = { kind: "field"; name: string; chunks: Buffer[]; size: number } | { kind: "file" } | { kind: "skip" };

/** Read the whole body; returns whether a file part was found. */
export async function readMultipart(
  body: AsyncIterable<Buffer>,
  boundary: string,
  handlers: MultipartHandlers,
): Promise<boolean> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const fields: Record<string, string> = {};
  let buf: Buffer = Buffer.from("\r\n"); // so the first boundary line matches `delimiter` too
  let state: State = "preamble";
  let part: Part = { kind: "skip" };
  let fileSeen = false;

  const emit = async (data: Buffer) => {
    if (data.length === 0) return;
    if (part.kind === "file") await handlers.sink(data);
    else if (part.kind === "field") {
      part.size += data.length;
      if (part.size > MAX_FIELD_BYTES) throw new Error("Multipart field too large");
      part.chunks.push(Buffer.from(data));
    }
  };

  const endPart = () => {
    if (part.kind === "field" && !fileSeen) fields[part.name] = Buffer.concat(part.chunks).toString("utf8");
    part = { kind: "skip" };
  };

  for await (const chunk of body) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (state === "done") {
        buf = Buffer.alloc(0);
        break;
      }
      if (state === "preamble" || state === "body") {
        const idx = buf.indexOf(delimiter);
        if (idx < 0) {
          // Keep a tail that could be the start of a delimiter split across chunks.
          const safe = buf.length - (delimiter.length - 1);
          if (safe > 0) {
            if (state === "body") await emit(buf.subarray(0, safe));
            buf = buf.subarray(safe);
          }
          break;
        }
        if (state === "body") {
          await emit(buf.subarray(0, idx));
          endPart();
        }
        buf = buf.subarray(idx + delimiter.length);
        state = "afterDelimiter";
        continue;
      }
      if (state === "afterDelimiter") {
        if (buf.length < 2) break;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          state = "done";
          continue;
        }
        const eol = buf.indexOf("\r\n");
        if (eol < 0) break; // transport padding before the line break
        buf = buf.subarray(eol + 2);
        state = "headers";
        continue;
      }
      // headers
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > MAX_HEADER_BYTES) throw new Error("Multipart part headers too large");
        break;
      }
      const headers = parseHeaders(buf.subarray(0, end).toString("utf8"));
      buf = buf.subarray(end + 4);
      state = "body";
      const disposition = parseDisposition(headers["content-disposition"] ?? "");
      if (disposition.filename !== undefined && !fileSeen) {
        fileSeen = true;
        const file: FilePart = {
          fieldName: disposition.name ?? "",
          filename: disposition.filename,
          contentType: headers["content-type"],
        };
        await handlers.onFile(file, { ...fields });
        part = { kind: "file" };
      } else if (disposition.filename === undefined && disposition.name !== undefined) {
        part = { kind: "field", name: disposition.name, chunks: [], size: 0 };
      } else {
        part = { kind: "skip" };
      }
    }
  }
  if (state !== "done") throw new Error("Unexpected end of multipart body");
  return fileSeen;
}

function parseHeaders(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

function parseDisposition(value: string): { name?: string; filename?: string } {
  const out: { name?: string; filename?: string } = {};
  for (const m of value.matchAll(/;\s*(name|filename)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/gi)) {
    const key = m[1]!.toLowerCase() as "name" | "filename";
    out[key] = (m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]!.trim());
  }
  return out;
}
