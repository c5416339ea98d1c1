/**
 * Contracts for fine-tuning datasets, shared by the validation engine
 * (functions/_shared/dataset/), the worker that stores its results and the
 * frontends that show them.
 *
 * Two halves:
 * - what one JSONL line may look like, per format (for clients that want to
 *   check a line before uploading; the engine is the authority and reports
 *   the same rules with stable codes, docs/errors-lt2xx.md);
 * - what validation produces: the verdict, statistics and report stored on
 *   the dataset row.
 *
 * Runtime-neutral (Node, Deno, browsers): imports nothing but "zod".
 */
import { z } from "zod";

// ── Lines ────────────────────────────────────────────────────────────────

/** The five accepted layouts; one per file, detected from the data. */
export const DATASET_FORMATS = ["chat", "conversation", "sharegpt", "instruction", "prompt_completion"] as const;
export const DatasetFormatSchema = z.enum(DATASET_FORMATS);
export type DatasetFormat = z.infer<typeof DatasetFormatSchema>;

/** Roles a message may have. `tool`/`function` are not supported (docs/ingestion.md). */
export const CHAT_ROLES = ["system", "user", "assistant"] as const;
export const ChatRoleSchema = z.enum(CHAT_ROLES);
export type ChatRole = z.infer<typeof ChatRoleSchema>;

const nonBlank = z.string().refine((s) => s.trim().length > 0, "must not be empty or only whitespace");

/** One message of a `chat` line, as OpenAI and Together accept it (minus tool calls). */
export const ChatMessageSchema = z.strictObject({
  role: ChatRoleSchema,
  content: nonBlank,
  name: z.string().min(1).optional(),
  /** 0 excludes an assistant message from the loss; only on assistant messages. */
  weight: z.union([z.literal(0), z.literal(1)]).optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

type RoleLike = { role: ChatRole; weight?: 0 | 1 };

/** The ordering rules every chat template we render can express. */
function checkOrder(messages: RoleLike[], ctx: z.RefinementCtx): void {
  let expected: ChatRole = "user";
  messages.forEach((m, i) => {
    if (m.role === "system") {
      if (i !== 0) ctx.addIssue({ code: "custom", path: [i, "role"], message: "system message must come first" });
      return;
    }
    if (m.role !== expected) {
      ctx.addIssue({ code: "custom", path: [i, "role"], message: `expected a ${expected} message (roles alternate, starting with user)` });
    }
    expected = m.role === "user" ? "assistant" : "user";
    if (m.weight !== undefined && m.role !== "assistant") {
      ctx.addIssue({ code: "custom", path: [i, "weight"], message: "weight is only allowed on assistant messages" });
    }
  });
  if (!messages.some((m) => m.role === "assistant")) {
    ctx.addIssue({ code: "custom", path: [], message: "at least one assistant message is required" });
  }
}

/** `{"messages":[...]}`; other top-level keys are ignored (the engine warns, LT234). */
export const ChatLineSchema = z.looseObject({
  messages: z.array(ChatMessageSchema).min(1).superRefine(checkOrder),
});

/** One turn of a `conversation` line. */
export const TurnSchema = z.strictObject({
  role: ChatRoleSchema,
  content: nonBlank,
  weight: z.union([z.literal(0), z.literal(1)]).optional(),
});

/** `{"conversation_id": ..., "turns":[...]}`. */
export const ConversationLineSchema = z.looseObject({
  conversation_id: z.union([z.string(), z.number()]).optional(),
  turns: z.array(TurnSchema).min(1).superRefine(checkOrder),
});

/** ShareGPT speakers and the roles they map to. */
export const SHAREGPT_ROLES = { system: "system", human: "user", gpt: "assistant" } as const satisfies Record<string, ChatRole>;

/** One turn of a ShareGPT line: `from` system | human | gpt, `value` the text. */
export const ShareGptTurnSchema = z.strictObject({
  from: z.enum(["system", "human", "gpt"]),
  value: nonBlank,
  /** As on chat messages: 0 excludes a gpt turn from the loss. */
  weight: z.union([z.literal(0), z.literal(1)]).optional(),
});

/** `{"conversations":[{"from","value"}]}` (ShareGPT), human -> user, gpt -> assistant. */
export const ShareGptLineSchema = z.looseObject({
  conversations: z.array(ShareGptTurnSchema).min(1).superRefine((turns, ctx) =>
    checkOrder(turns.map((t) => ({ role: SHAREGPT_ROLES[t.from], ...(t.weight === undefined ? {} : { weight: t.weight }) })), ctx)),
});

/** `{"instruction", "input"?, "output"}` (Alpaca). */
export const InstructionLineSchema = z.looseObject({
  instruction: nonBlank,
  input: z.string().optional(),
  output: nonBlank,
});

/** `{"prompt", "completion"}`: raw text, no chat template. */
export const PromptCompletionLineSchema = z.looseObject({
  prompt: z.string(),
  completion: nonBlank,
});

/** Schema of one line, by format. */
export const DATASET_LINE_SCHEMAS = {
  chat: ChatLineSchema,
  conversation: ConversationLineSchema,
  sharegpt: ShareGptLineSchema,
  instruction: InstructionLineSchema,
  prompt_completion: PromptCompletionLineSchema,
} as const;

// ── Validation result ────────────────────────────────────────────────────

/** Tokenizer families the engine counts tokens for (`base_models.tokenizer`). */
export const TOKENIZER_FAMILIES = ["llama3", "qwen3", "gemma3", "mistral-v1"] as const;
export const TokenizerFamilySchema = z.enum(TOKENIZER_FAMILIES);
export type TokenizerFamily = z.infer<typeof TokenizerFamilySchema>;

/** A stable problem code, LT200–LT299 (docs/errors-lt2xx.md). */
export const IssueCodeSchema = z.string().regex(/^LT2\d\d$/);

/** One problem found in the file. */
export const IssueSchema = z.object({
  code: IssueCodeSchema,
  severity: z.enum(["error", "warning"]),
  /** 1-based physical line (split on "\n"); null for problems of the whole file. */
  line: z.number().int().positive().nullable(),
  /** 1-based column in Unicode code points (of the line after a stripped BOM), where it applies. */
  column: z.number().int().positive().optional(),
  message: z.string(),
  /** How to fix it. */
  hint: z.string().optional(),
});
export type Issue = z.infer<typeof IssueSchema>;

/** Exact order statistics of an integer distribution (nearest-rank percentiles). */
export const DistributionSchema = z.object({
  count: z.number().int().nonnegative(),
  sum: z.number().int().nonnegative(),
  mean: z.number(),
  min: z.number().int(),
  p5: z.number().int(),
  p50: z.number().int(),
  p95: z.number().int(),
  max: z.number().int(),
});
export type Distribution = z.infer<typeof DistributionSchema>;

/** Token statistics of valid examples under one tokenizer family. */
export const TokenStatsSchema = z.object({
  /** Tokens of the rendered chat template per example (special tokens included). */
  total: DistributionSchema.nullable(),
  /** Tokens the loss is computed on: assistant content and end-of-turn, weight 0 excluded. */
  trainable: DistributionSchema.nullable(),
  totalTokens: z.number().int().nonnegative(),
  trainableTokens: z.number().int().nonnegative(),
});
export type TokenStats = z.infer<typeof TokenStatsSchema>;

/** Per base model: what its context length means for this dataset. */
export const ModelStatsSchema = z.object({
  family: TokenizerFamilySchema,
  contextLength: z.number().int().positive(),
  /** Examples longer than the context (they would be truncated). */
  examplesOverContext: z.number().int().nonnegative(),
  /** Sum over examples of min(context, tokens): what one epoch processes and bills. */
  billableTokensPerEpoch: z.number().int().nonnegative(),
});
export type ModelStats = z.infer<typeof ModelStatsSchema>;

export const DatasetStatsSchema = z.object({
  format: DatasetFormatSchema.nullable(),
  lines: z.object({
    total: z.number().int().nonnegative(),
    blank: z.number().int().nonnegative(),
    valid: z.number().int().nonnegative(),
    invalid: z.number().int().nonnegative(),
  }),
  /** Valid examples (= lines.valid); statistics below cover only these. */
  examples: z.number().int().nonnegative(),
  /** Valid examples identical to an earlier one (after parsing; key order and whitespace do not matter). */
  duplicates: z.number().int().nonnegative(),
  messagesPerExample: DistributionSchema.nullable(),
  roleCounts: z.record(z.string(), z.number().int().nonnegative()),
  tokens: z.record(z.string(), TokenStatsSchema),
  models: z.record(z.string(), ModelStatsSchema),
  /** OpenAI's default-epochs heuristic (docs/ingestion.md); null without examples. */
  recommendedEpochs: z.number().int().positive().nullable(),
});
export type DatasetStats = z.infer<typeof DatasetStatsSchema>;

export const ValidationReportSchema = z.object({
  errorCount: z.number().int().nonnegative(),
  warningCount: z.number().int().nonnegative(),
  /** Count of every error and warning by code, including those not listed below. */
  totals: z.record(IssueCodeSchema, z.number().int().positive()),
  /** The first errors and warnings by line (at most `maxReportedIssues` each). */
  errors: z.array(IssueSchema),
  warnings: z.array(IssueSchema),
  /** Invalid lines / non-blank lines. */
  invalidFraction: z.number().min(0).max(1),
  /** The owner's tolerance: invalid lines up to this fraction are skipped instead of failing. */
  maxInvalidFraction: z.number().min(0).max(1),
});
export type ValidationReport = z.infer<typeof ValidationReportSchema>;

/** What validating one file produces. */
export const ValidationResultSchema = z.object({
  verdict: z.enum(["ready", "error"]),
  format: DatasetFormatSchema.nullable(),
  stats: DatasetStatsSchema,
  report: ValidationReportSchema,
});
export type ValidationResult = z.infer<typeof ValidationResultSchema>;
