/**
 * Byte-level helpers of the line reader: strict UTF-8 decoding with the
 * position of the first bad byte, base64 for the carried-over partial line in
 * the JSON cursor, and sniffing of binary formats by their magic bytes.
 */

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decode strictly (never substitutes U+FFFD); null when the bytes are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Where strict decoding fails: the byte offset of the first invalid sequence
 * and its 1-based column in code points. Follows the Unicode "maximal
 * subpart" rules that TextDecoder applies (overlongs, surrogates and values
 * above U+10FFFF are invalid; a truncated sequence fails at its start).
 */
export function findInvalidUtf8(bytes: Uint8Array): { offset: number; column: number } | null {
  let i = 0;
  let column = 1;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) {
      i++;
      column++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return { offset: i, column };
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      const min = k === 1 ? lo : 0x80;
      const max = k === 1 ? hi : 0xbf;
      if (c === undefined || c < min || c > max) return { offset: i, column };
    }
    i += need + 1;
    column++;
  }
  return null;
}

/** Bytes → base64 (standard alphabet, padded). */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    s += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + step)));
  }
  return btoa(s);
}

/** base64 → bytes. */
export function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** a followed by b (returns b itself when a is empty). */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** What the first bytes of a file say it is, when it is clearly not UTF-8 text. */
export type Sniffed = { code: "LT201" | "LT203"; kind: string };

const MAGIC: Array<{ bytes: number[]; code: "LT201" | "LT203"; kind: string }> = [
  { bytes: [0x1f, 0x8b], code: "LT201", kind: "gzip" },
  { bytes: [0x50, 0x4b, 0x03, 0x04], code: "LT201", kind: "zip" },
  { bytes: [0x50, 0x41, 0x52, 0x31], code: "LT201", kind: "Parquet" },
  { bytes: [0x42, 0x5a, 0x68], code: "LT201", kind: "bzip2" },
  { bytes: [0xfd, 0x37, 0x7a, 0x58], code: "LT201", kind: "xz" },
  { bytes: [0x28, 0xb5, 0x2f, 0xfd], code: "LT201", kind: "zstd" },
  { bytes: [0xff, 0xfe], code: "LT203", kind: "UTF-16 LE (or UTF-32 LE)" },
  { bytes: [0xfe, 0xff], code: "LT203", kind: "UTF-16 BE" },
];

/**
 * Bytes the sniffer looks at. No magic contains "\n" or a NUL before its last
 * byte, so sniffing a first line cut short by a newline or a NUL (both end
 * the sniffable head) gives the same answer whatever the chunk boundaries.
 */
export const SNIFF_BYTES = 4;

/** Match the file's first bytes (up to {@link SNIFF_BYTES}) against known binary formats. */
export function sniff(head: Uint8Array): Sniffed | null {
  for (const m of MAGIC) {
    if (head.length >= m.bytes.length && m.bytes.every((b, i) => head[i] === b)) return { code: m.code, kind: m.kind };
  }
  return null;
}

/** True when the line holds only JSON whitespace (space, tab, CR). */
export function isBlank(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  }
  return true;
}
