import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { loadFunctionsConfig, parseFunctionsConfig } from "../../stack/functions/config.ts";
import { parseDotenv } from "../../stack/functions/dotenv.ts";

describe("parseFunctionsConfig() reads [functions.*] as the Supabase CLI does", () => {
  it("resolves entrypoint and import_map against the folder of config.toml and defaults enabled/verify_jwt to true", () => {
    const specs = parseFunctionsConfig(
      `project_id = "x"\n[functions.a]\nentrypoint = "../functions/a/index.ts"\nimport_map = "../deno.json"\n[functions.b]\nverify_jwt = false\n`,
      "/repo/supabase",
    );
    expect(specs).toEqual([
      { slug: "a", verifyJwt: true, entrypoint: "/repo/functions/a/index.ts", importMap: "/repo/deno.json" },
      { slug: "b", verifyJwt: false, entrypoint: "/repo/supabase/functions/b/index.ts" },
    ]);
  });

  it("leaves out disabled functions and rejects invalid slugs and values", () => {
    expect(parseFunctionsConfig(`[functions.off]\nenabled = false\n`, "/r/supabase")).toEqual([]);
    expect(() => parseFunctionsConfig(`[functions."1bad"]\n`, "/r/supabase")).toThrow(/Invalid function name/);
    expect(() => parseFunctionsConfig(`[functions.a]\nverify_jwt = "no"\n`, "/r/supabase")).toThrow(/verify_jwt/);
  });
});

describe("parseDotenv() reads env files like godotenv", () => {
  it("handles export, quotes, escapes and comments", () => {
    const text = `# comment\nA=1\nexport B='x # y'\nC="line\\nnext"\nD=plain # trailing\n\nE=\n`;
    expect(parseDotenv(text)).toEqual({ A: "1", B: "x # y", C: "line\nnext", D: "plain", E: "" });
  });

  it("rejects lines that are not assignments", () => {
    expect(() => parseDotenv("just words")).toThrow(/Cannot parse/);
  });
});

describe("the project's function configuration", () => {
  const specs = loadFunctionsConfig(resolve(PROJECT_ROOT, "supabase/config.toml"));

  it("declares every functions/<name>/index.ts in supabase/config.toml with the shared deno.json", () => {
    const dir = resolve(PROJECT_ROOT, "functions");
    const onDisk = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith("_") && existsSync(resolve(dir, d.name, "index.ts")))
      .map((d) => d.name)
      .sort();
    expect(onDisk).toContain("health");
    expect(specs.map((s) => s.slug).sort()).toEqual(onDisk);
    for (const s of specs) {
      expect(s.entrypoint).toBe(resolve(dir, s.slug, "index.ts"));
      expect(s.importMap).toBe(resolve(PROJECT_ROOT, "deno.json"));
    }
  });

  it("pins in deno.json the same npm versions that package.json installs", () => {
    const deno = JSON.parse(readFileSync(resolve(PROJECT_ROOT, "deno.json"), "utf8")) as { imports: Record<string, string> };
    const pkg = JSON.parse(readFileSync(resolve(PROJECT_ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const npmImports = Object.values(deno.imports).filter((v) => v.startsWith("npm:"));
    expect(npmImports.length).toBeGreaterThan(0);
    for (const spec of npmImports) {
      const m = /^npm:(@?[^@]+)@(.+)$/.exec(spec);
      expect(m, spec).not.toBeNull();
      expect(`${m![1]}@${pkg.dependencies[m![1]!]}`).toBe(`${m![1]}@${m![2]}`);
    }
  });
});
