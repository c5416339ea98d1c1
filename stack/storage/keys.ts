/**
 * Names that can reach the database at all. Postgres text cannot hold NUL
 * (22021) and a name of megabytes only burdens the index, so every route
 * checks bucket and object names (from the path and from JSON bodies) here
 * first and answers 400 with the Storage API's own errors: `InvalidKey`
 * (`Invalid key: <name>`) and `InvalidBucketName` (`Bucket name invalid`).
 * Undecodable percent-encoding (invalid UTF-8) is rejected where the path
 * is decoded (routes.ts). Uploads check more (upload.ts mustBeValidKey).
 */
import { ERRORS } from "./errors.ts";

/** S3's limit on key length, which real Storage inherits from its backend. */
export const MAX_KEY_BYTES = 1024;
/** Real Storage's limit on bucket names. */
export const MAX_BUCKET_NAME_LENGTH = 100;

// Control characters, and lone UTF-16 surrogates (a JSON body can carry them; UTF-8 cannot).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]|\p{Cs}/u;

/** Throws InvalidKey for a name with control characters or over {@link MAX_KEY_BYTES} bytes. */
export function mustBeStorableKey(name: string): void {
  if (CONTROL.test(name) || Buffer.byteLength(name, "utf8") > MAX_KEY_BYTES) {
    throw ERRORS.invalidKey(name);
  }
}

/** Throws InvalidBucketName for a bucket name with control characters or over 100 characters. */
export function mustBeStorableBucket(name: string): void {
  if (CONTROL.test(name) || name.length > MAX_BUCKET_NAME_LENGTH) {
    throw ERRORS.invalidBucketName();
  }
}

/** Every element of a JSON body's list of names (remove's prefixes, createSignedUrls' paths). */
export function mustBeStorableKeys(names: readonly string[]): void {
  for (const n of names) mustBeStorableKey(n);
}
