/**
 * FNV-1a 64-bit, synchronous and dependency-free, for exact-duplicate
 * detection (crypto.subtle is async and too slow per line).
 *
 * Strings are fed as their UTF-8 bytes after a 4-byte length prefix, so a
 * sequence of fields hashes unambiguously (["ab","c"] differs from
 * ["a","bc"]). 64 bits make an accidental collision among a million examples
 * about a one-in-thirty-million event (n²/2⁶⁵); a collision only produces a
 * false "duplicate" warning, never a rejected file.
 */

const PRIME_LO = 0x1b3; // FNV prime is 2^40 + 0x1b3
const TWO_32 = 4294967296;

/** An incremental FNV-1a 64 hasher. */
export class Fnv64 {
  private lo = 0x84222325;
  private hi = 0xcbf29ce4;

  /** Feed one byte (0–255). */
  byte(b: number): void {
    const lo = (this.lo ^ b) >>> 0;
    const l = lo * PRIME_LO; // < 2^41: exact in a double
    this.hi = (Math.imul(this.hi, PRIME_LO) + (lo << 8) + Math.floor(l / TWO_32)) >>> 0;
    this.lo = l >>> 0;
  }

  /** Feed an unsigned 32-bit integer, little-endian. */
  u32(n: number): void {
    this.byte(n & 0xff);
    this.byte((n >>> 8) & 0xff);
    this.byte((n >>> 16) & 0xff);
    this.byte((n >>> 24) & 0xff);
  }

  /** Feed a length-prefixed string as UTF-8 (the input must be well-formed UTF-16). */
  string(s: string): void {
    this.u32(s.length);
    this.raw(s);
  }

  /** Feed a string's UTF-8 bytes without a prefix. */
  raw(s: string): void {
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        this.byte(c);
      } else if (c < 0x800) {
        this.byte(0xc0 | (c >> 6));
        this.byte(0x80 | (c & 0x3f));
      } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
        this.byte(0xf0 | (c >> 18));
        this.byte(0x80 | ((c >> 12) & 0x3f));
        this.byte(0x80 | ((c >> 6) & 0x3f));
        this.byte(0x80 | (c & 0x3f));
      } else {
        this.byte(0xe0 | (c >> 12));
        this.byte(0x80 | ((c >> 6) & 0x3f));
        this.byte(0x80 | (c & 0x3f));
      }
    }
  }

  /** The digest as 16 lowercase hex digits. */
  hex(): string {
    return this.hi.toString(16).padStart(8, "0") + this.lo.toString(16).padStart(8, "0");
  }
}

/** FNV-1a 64 of a string's UTF-8 bytes (no length prefix), as 16 hex digits. */
export function fnv1a64(s: string): string {
  const h = new Fnv64();
  h.raw(s);
  return h.hex();
}
