/**
 * The five line formats: detection from a line's keys, and the top-level
 * checks of each. The first line whose keys name a format fixes the format
 * of the whole file; a later line in another format is an error (LT231).
 *
 *   chat               {"messages":[{"role","content","name"?,"weight"?}]}
 *   conversation       {"conversation_id"?, "turns":[{"role","content","weight"?}]}
 *   sharegpt           {"conversations":[{"from": system|human|gpt, "value", "weight"?}]}
 *   instruction        {"instruction", "input"?, "output"}
 *   prompt_completion  {"prompt", "completion"}
 */
import type { DatasetFormat } from "../../../types/dataset.ts";
import { severityOf } from "./codes.ts";
import type { Example, LineIssue } from "./example.ts";
import { checkMessages, fromShareGpt, typeName } from "./messages.ts";

/** The key that identifies each format, in detection order. */
const MARKERS: Array<[DatasetFormat, string[]]> = [
  ["chat", ["messages"]],
  ["conversation", ["turns"]],
  ["sharegpt", ["conversations"]],
  ["instruction", ["instruction", "output"]],
  ["prompt_completion", ["prompt", "completion"]],
];

const KNOWN_KEYS: Record<DatasetFormat, string[]> = {
  chat: ["messages"],
  conversation: ["conversation_id", "turns"],
  sharegpt: ["conversations"],
  instruction: ["instruction", "input", "output"],
  prompt_completion: ["prompt", "completion"],
};

/** Top-level keys that mean a feature we cannot train on. */
const UNSUPPORTED_TOP: Record<string, string> = {
  tools: "Tool definitions are not supported",
  functions: "Function definitions are not supported",
  parallel_tool_calls: "Tool calls are not supported",
};

/** The format a line's keys point to, or null. */
export function detectFormat(obj: Record<string, unknown>): DatasetFormat | null {
  for (const [format, keys] of MARKERS) if (keys.some((k) => k in obj)) return format;
  return null;
}

/** An actionable message for a line whose keys match no format. */
export function unknownFormatIssue(obj: Record<string, unknown>): LineIssue {
  const keys = Object.keys(obj);
  const shown = keys.length === 0 ? "no keys" : `keys ${keys.slice(0, 5).map((k) => JSON.stringify(k)).join(", ")}${keys.length > 5 ? ", ..." : ""}`;
  let hint = 'Use one of: {"messages":[...]}, {"turns":[...]}, {"conversations":[...]}, {"instruction","output"}, {"prompt","completion"} (docs/ingestion.md)';
  if ("text" in obj) hint = 'Plain-text datasets are not supported: use {"prompt": "", "completion": <text>}';
  else if ("question" in obj || "answer" in obj) hint = 'Rename the fields: {"prompt": <question>, "completion": <answer>} or use the chat format';
  return { code: "LT230", message: `The line matches no supported format (${shown})`, hint };
}

/**
 * Check a JSON object against the file's format. Returns the normalised
 * example, or null when the line has errors; every issue (errors and
 * warnings) is pushed to `issues`.
 */
export function checkExample(format: DatasetFormat, obj: Record<string, unknown>, issues: LineIssue[]): Example | null {
  const own = detectFormat(obj);
  if (own !== null && own !== format && !MARKERS.find(([f]) => f === format)![1].some((k) => k in obj)) {
    issues.push({ code: "LT231", message: `The line is in the ${own} format but the file is ${format} (detected from its first example)`, hint: "Use one format for the whole file" });
    return null;
  }
  const start = issues.length;
  for (const key of Object.keys(obj)) {
    if (KNOWN_KEYS[format].includes(key)) continue;
    const unsupported = UNSUPPORTED_TOP[key];
    if (unsupported) issues.push({ code: "LT238", message: `${unsupported} ("${key}")`, hint: "Remove tool/function calling examples; only text conversations are supported" });
    else issues.push({ code: "LT234", message: `Key ${JSON.stringify(key)} is ignored`, hint: `The ${format} format uses only: ${KNOWN_KEYS[format].join(", ")}` });
  }
  const example = shape(format, obj, issues);
  return issues.slice(start).some((i) => severityOf(i.code) === "error") ? null : example;
}

function shape(format: DatasetFormat, obj: Record<string, unknown>, issues: LineIssue[]): Example | null {
  switch (format) {
    case "chat": {
      if (!("messages" in obj)) return missing("messages", issues);
      const messages = checkMessages(obj.messages, "messages", issues);
      return messages && { kind: "chat", messages };
    }
    case "conversation": {
      if ("conversation_id" in obj && typeof obj.conversation_id !== "string" && typeof obj.conversation_id !== "number") {
        issues.push({ code: "LT235", message: `conversation_id must be a string or a number, got ${typeName(obj.conversation_id)}` });
      }
      if (!("turns" in obj)) return missing("turns", issues);
      const messages = checkMessages(obj.turns, "turns", issues);
      return messages && { kind: "chat", messages };
    }
    case "sharegpt": {
      if (!("conversations" in obj)) return missing("conversations", issues);
      const turns = fromShareGpt(obj.conversations, issues);
      if (turns === null) return null;
      const messages = checkMessages(turns, "conversations", issues);
      return messages && { kind: "chat", messages };
    }
    case "instruction": {
      const instruction = text(obj, "instruction", true, issues);
      const input = "input" in obj ? text(obj, "input", false, issues) : "";
      const output = text(obj, "output", true, issues);
      if (instruction === null || input === null || output === null) return null;
      // The instruction and its optional input form the user turn (the Alpaca convention).
      const user = input.trim() === "" ? instruction : `${instruction}\n\n${input}`;
      return { kind: "chat", messages: [{ role: "user", content: user }, { role: "assistant", content: output }] };
    }
    case "prompt_completion": {
      const prompt = text(obj, "prompt", false, issues);
      const completion = text(obj, "completion", true, issues);
      if (prompt === null || completion === null) return null;
      return { kind: "completion", prompt, completion };
    }
  }
}

function missing(key: string, issues: LineIssue[]): null {
  issues.push({ code: "LT232", message: `Missing key "${key}"` });
  return null;
}

/** A required (or optional-but-present) string field; `nonEmpty` rejects blank text. */
function text(obj: Record<string, unknown>, key: string, nonEmpty: boolean, issues: LineIssue[]): string | null {
  if (!(key in obj)) return missing(key, issues);
  const v = obj[key];
  if (typeof v !== "string") {
    issues.push({ code: "LT235", message: `"${key}" must be a string, got ${typeName(v)}` });
    return null;
  }
  if (nonEmpty && v.trim() === "") {
    issues.push({ code: "LT239", message: `"${key}" is empty`, hint: "Remove the example or fill it in" });
    return null;
  }
  return v;
}
