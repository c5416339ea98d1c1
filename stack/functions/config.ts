/**
 * Which Edge Functions exist and how to serve them, read from the
 * `[functions.<slug>]` blocks of `supabase/config.toml` with the Supabase
 * CLI's rules: `enabled` and `verify_jwt` default to true, `entrypoint` and
 * `import_map` are relative to the folder holding config.toml, the default
 * entrypoint is `functions/<slug>/index.ts` in that folder, and a function
 * without `import_map` uses the `deno.json` next to its entrypoint if any.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse } from "smol-toml";
import { z } from "zod";

/** One function as the runtime serves it. */
export type FunctionSpec = {
  slug: string;
  verifyJwt: boolean;
  /** Absolute path of the entrypoint module. */
  entrypoint: string;
  /** Absolute path of the deno.json / import map, if any. */
  importMap?: string;
};

const FunctionBlock = z.object({
  enabled: z.boolean().default(true),
  verify_jwt: z.boolean().default(true),
  import_map: z.string().min(1).optional(),
  entrypoint: z.string().min(1).optional(),
  static_files: z.array(z.string()).optional(),
});

const ConfigFile = z.object({ functions: z.record(z.string(), FunctionBlock).default({}) });

// The CLI's slug rule (ValidateFunctionSlug).
const SLUG = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** Parse config.toml text; `configDir` is the folder it lives in. Disabled functions are left out. */
export function parseFunctionsConfig(text: string, configDir: string): FunctionSpec[] {
  const parsed = ConfigFile.safeParse(parse(text));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid [functions] configuration:\n  ${lines.join("\n  ")}`);
  }
  const specs: FunctionSpec[] = [];
  for (const [slug, block] of Object.entries(parsed.data.functions)) {
    if (!SLUG.test(slug)) throw new Error(`Invalid function name "${slug}": must match ${SLUG}`);
    if (!block.enabled) continue;
    const at = (p: string) => (isAbsolute(p) ? p : resolve(configDir, p));
    const entrypoint = at(block.entrypoint ?? join("functions", slug, "index.ts"));
    const spec: FunctionSpec = { slug, verifyJwt: block.verify_jwt, entrypoint };
    const importMap = block.import_map ? at(block.import_map) : siblingDenoJson(entrypoint);
    if (importMap) spec.importMap = importMap;
    specs.push(spec);
  }
  return specs;
}

/** Read the functions of a config.toml file; a missing file means no functions. */
export function loadFunctionsConfig(configPath: string): FunctionSpec[] {
  if (!existsSync(configPath)) return [];
  return parseFunctionsConfig(readFileSync(configPath, "utf8"), dirname(configPath));
}

function siblingDenoJson(entrypoint: string): string | undefined {
  return ["deno.json", "deno.jsonc"].map((f) => join(dirname(entrypoint), f)).find((p) => existsSync(p));
}
