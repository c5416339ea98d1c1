/**
 * Deterministic randomness for the simulator: a seeded PRNG for fault
 * injection and a stateless hash of (seed, index) for per-step noise, so a
 * training curve depends only on the job's seed and the step, never on how
 * the timer happened to slice the run.
 */

/** mulberry32: small, fast, good enough for simulation. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform float in [0, 1) determined by `seed`, `stream` and `index` alone. */
export function hashUniform(seed: number, stream: number, index: number): number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca77) ^ Math.imul(index + 1, 0xc2b2ae3d);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** A standard normal sample (Box-Muller) determined by `seed`, `stream` and `index`. */
export function hashGaussian(seed: number, stream: number, index: number): number {
  const u1 = Math.max(hashUniform(seed, stream, 2 * index), 1e-12);
  const u2 = hashUniform(seed, stream, 2 * index + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** A random id with a prefix, e.g. `job_3f9a...`. */
export function randomId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
