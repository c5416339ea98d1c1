/**
 * Reading one example the way a trainer does when the submit carries a
 * `dataset_spec`: parse the line in its declared format, and split its text
 * into what the loss sees and what it does not (the masking rule). The
 * simulator trains nothing; it uses the split to size runs and to report
 * `trainable_tokens` (characters / 4, like every other token count here).
 */
import type { DatasetSpec } from "../../functions/_shared/gpu/types.ts";

type Segment = { text: string; trained: boolean };

const ROLES: Record<string, string> = { system: "system", user: "user", assistant: "assistant" };
const SHAREGPT: Record<string, string> = { system: "system", human: "user", gpt: "assistant" };

function turns(list: unknown, roleKey: string, textKey: string, roles: Record<string, string>, spec: DatasetSpec): Segment[] | string {
  if (!Array.isArray(list) || list.length === 0) return "has no messages";
  const out: Segment[] = [];
  for (const m of list as unknown[]) {
    if (m === null || typeof m !== "object") return "has a message that is not an object";
    const rec = m as Record<string, unknown>;
    const role = typeof rec[roleKey] === "string" ? roles[rec[roleKey] as string] : undefined;
    const text = rec[textKey];
    if (role === undefined) return `has a message whose "${roleKey}" is not one of ${Object.keys(roles).join(", ")}`;
    if (typeof text !== "string") return `has a message whose "${textKey}" is not a string`;
    const assistant = role === "assistant";
    const weighted = !spec.message_weights || rec.weight !== 0;
    out.push({ text, trained: assistant ? weighted : spec.train_on_inputs });
  }
  return out;
}

function segments(obj: Record<string, unknown>, spec: DatasetSpec): Segment[] | string {
  const str = (k: string) => (typeof obj[k] === "string" ? (obj[k] as string) : null);
  switch (spec.line_format) {
    case "chat":
      return turns(obj.messages, "role", "content", ROLES, spec);
    case "conversation":
      return turns(obj.turns, "role", "content", ROLES, spec);
    case "sharegpt":
      return turns(obj.conversations, "from", "value", SHAREGPT, spec);
    case "instruction": {
      const instruction = str("instruction");
      const output = str("output");
      if (instruction === null || output === null) return 'has no "instruction" and "output" strings';
      return [{ text: instruction + (str("input") ?? ""), trained: spec.train_on_inputs }, { text: output, trained: true }];
    }
    case "prompt_completion": {
      const prompt = str("prompt");
      const completion = str("completion");
      if (prompt === null || completion === null) return 'has no "prompt" and "completion" strings';
      return [{ text: prompt, trained: spec.train_on_inputs }, { text: completion, trained: true }];
    }
  }
}

/** One example: the characters in its loss, or why it cannot be read in the declared format. */
export function readExample(line: string, spec: DatasetSpec): { trainedChars: number } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { problem: "is not JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { problem: "is not a JSON object" };
  const segs = segments(value as Record<string, unknown>, spec);
  if (typeof segs === "string") return { problem: `is not a ${spec.line_format} example: it ${segs}` };
  let trainedChars = 0;
  for (const s of segs) if (s.trained) trainedChars += s.text.length;
  return { trainedChars };
}
