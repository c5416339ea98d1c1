/** `npm run gen`: regenerate types/database.ts and sql/schema.sql from a throwaway migrated stack. */
import { writeFileSync } from "node:fs";
import { startThrowawayStack } from "../stack/throwaway.ts";
import { dumpSchema, SCHEMA_FILE } from "./dump-schema.ts";
import { generateTypes, TYPES_FILE } from "./gen-types.ts";

const stack = await startThrowawayStack("gen");
try {
  writeFileSync(TYPES_FILE, generateTypes(stack.status.DB_URL));
  writeFileSync(SCHEMA_FILE, await dumpSchema(stack.status.DB_URL));
  console.log(`wrote ${TYPES_FILE}\nwrote ${SCHEMA_FILE}`);
} finally {
  await stack.stop();
}
