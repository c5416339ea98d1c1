/**
 * The packed vocabulary artifacts of vocab/: a {@link VocabSource} as gzip +
 * base64 in a TypeScript module, so a family loads in tens of milliseconds
 * with a few megabytes of memory instead of parsing the package's 1–19 MB
 * JavaScript vocabulary (docs/ingestion.md has the measurements).
 *
 * Layout before gzip: "LTV1", u32 little-endian header length, the header
 * (JSON: everything but the merges), then the merges as three columns (left
 * ids, right ids, merged ids) of 3-byte little-endian integers; columns
 * compress better than rows.
 */
import { fromBase64, toBase64 } from "./bytes.ts";
import type { VocabSource } from "./vocab.ts";

const MAGIC = "LTV1";

async function through(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const body = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** The uncompressed binary form (deterministic; what freshness checks compare). */
export function encodeSource(src: VocabSource): Uint8Array {
  const { merges, ...rest } = src;
  const header = new TextEncoder().encode(JSON.stringify({ ...rest, mergeCount: merges.length / 3 }));
  const n = merges.length / 3;
  const out = new Uint8Array(8 + header.length + n * 9);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, header.length, true);
  out.set(header, 8);
  const base = 8 + header.length;
  for (let r = 0; r < n; r++) {
    for (let col = 0; col < 3; col++) {
      const id = merges[r * 3 + col]!;
      if (id < 0 || id >= 1 << 24) throw new RangeError(`Token id ${id} does not fit in 3 bytes`);
      const o = base + (col * n + r) * 3;
      out[o] = id & 0xff;
      out[o + 1] = (id >> 8) & 0xff;
      out[o + 2] = id >> 16;
    }
  }
  return out;
}

/** Inverse of {@link encodeSource}. */
export function decodeSource(bytes: Uint8Array): VocabSource {
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) throw new Error("Not a packed vocabulary");
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  const { mergeCount: n, ...rest } = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))) as Omit<VocabSource, "merges"> & { mergeCount: number };
  const base = 8 + len;
  const merges = new Int32Array(n * 3);
  for (let col = 0; col < 3; col++) {
    for (let r = 0, o = base + col * n * 3; r < n; r++, o += 3) merges[r * 3 + col] = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16);
  }
  return { ...rest, merges };
}

/** Pack a source for a vocab/ module: gzip, then base64. */
export async function packSource(src: VocabSource): Promise<string> {
  return toBase64(await through(encodeSource(src), new CompressionStream("gzip")));
}

/** Unpack the base64 string of a vocab/ module. */
export async function unpackSource(packed: string): Promise<VocabSource> {
  return decodeSource(await through(fromBase64(packed), new DecompressionStream("gzip")));
}
