/**
 * Checks of a message list (`messages` of chat lines, `turns` of
 * conversation lines): keys, roles, content, weights and the order every
 * supported chat template can render (optional system first, then user and
 * assistant alternating, starting with user). Roles `tool`/`function` and
 * tool calls are not supported (docs/ingestion.md explains why).
 */
import { CHAT_ROLES, SHAREGPT_ROLES, type ChatRole } from "../../../types/dataset.ts";
import { severityOf } from "./codes.ts";
import type { LineIssue, Message } from "./example.ts";

const UNSUPPORTED_KEYS: Record<string, string> = {
  tool_calls: "Tool calls are not supported",
  function_call: "Function calls are not supported",
  tool_call_id: "Tool messages are not supported",
};

/** Friendly mapping for role names other tools use. */
const ROLE_HINTS: Record<string, string> = {
  human: "user",
  gpt: "assistant",
  bot: "assistant",
  model: "assistant",
  ai: "assistant",
  chatbot: "assistant",
  developer: "system",
  prompter: "user",
};

function roleHint(role: string): string {
  const lower = role.toLowerCase();
  if ((CHAT_ROLES as readonly string[]).includes(lower)) return `Roles are lowercase: use "${lower}"`;
  const mapped = ROLE_HINTS[lower];
  if (mapped) return `Use "${mapped}" (this looks like another tool's naming)`;
  return 'Use "system", "user" or "assistant"';
}

const str = JSON.stringify;

/**
 * Validate `list` (found under `field`); returns the normalised messages, or
 * null when any error was found (all of which are pushed to `issues`).
 */
export function checkMessages(list: unknown, field: "messages" | "turns" | "conversations", issues: LineIssue[]): Message[] | null {
  if (!Array.isArray(list)) {
    issues.push({ code: "LT235", message: `"${field}" must be an array of messages, got ${typeName(list)}` });
    return null;
  }
  if (list.length === 0) {
    issues.push({ code: "LT236", message: `"${field}" is empty`, hint: "Add at least a user and an assistant message" });
    return null;
  }
  const allowed = ["role", "content", "name", "weight"];
  const start = issues.length;
  const out: Message[] = [];
  list.forEach((m: unknown, i) => {
    const at = `${field}[${i}]`;
    if (m === null || typeof m !== "object" || Array.isArray(m)) {
      issues.push({ code: "LT235", message: `${at} must be an object with "role" and "content", got ${typeName(m)}` });
      return;
    }
    const rec = m as Record<string, unknown>;
    for (const key of Object.keys(rec)) {
      if (allowed.includes(key)) continue;
      const unsupported = UNSUPPORTED_KEYS[key];
      if (unsupported) issues.push({ code: "LT238", message: `${at}: ${unsupported} ("${key}")`, hint: "Remove tool/function calling examples; only text conversations are supported" });
      else issues.push({ code: "LT233", message: `${at} has unknown key ${str(key)}`, hint: `Allowed keys: ${allowed.join(", ")}` });
    }
    const role = checkRole(rec, at, issues);
    const content = checkContent(rec, at, issues);
    let weight: 0 | 1 | undefined;
    if ("weight" in rec) {
      if (rec.weight !== 0 && rec.weight !== 1) {
        issues.push({ code: "LT241", message: `${at}: weight must be 0 or 1, got ${str(rec.weight) ?? typeName(rec.weight)}`, hint: "Use 0 to exclude an assistant message from training, 1 (or no weight) to include it" });
      } else if (role !== null && role !== "assistant") {
        issues.push({ code: "LT241", message: `${at}: weight is only allowed on assistant messages (role is "${role}")`, hint: "Remove the weight; only assistant messages are trained on" });
      } else weight = rec.weight;
    }
    let name: string | undefined;
    if ("name" in rec) {
      if (typeof rec.name !== "string" || rec.name.trim() === "") issues.push({ code: "LT245", message: `${at}: name must be a non-empty string`, hint: "Remove the name or give it a value" });
      else name = rec.name;
    }
    if (role !== null && content !== null) {
      const msg: Message = { role, content };
      if (weight !== undefined) msg.weight = weight;
      if (name !== undefined) msg.name = name;
      out.push(msg);
    }
  });
  if (issues.slice(start).some((i) => severityOf(i.code) === "error") || out.length !== list.length) return null;
  return checkOrder(out, field, issues) ? out : null;
}

const SHAREGPT_TOOL_SPEAKERS = ["tool", "function_call", "observation", "function", "tool_call"];

/**
 * ShareGPT turns (`{"from", "value", "weight"?}`) as messages for
 * {@link checkMessages}: from system | human | gpt becomes role system |
 * user | assistant, value the content. Null when a turn has the wrong keys or
 * speaker (every problem is pushed to `issues`); content, weights and order
 * are then checked like any other message list.
 */
export function fromShareGpt(list: unknown, issues: LineIssue[]): unknown[] | null {
  if (!Array.isArray(list)) {
    issues.push({ code: "LT235", message: `"conversations" must be an array of turns, got ${typeName(list)}` });
    return null;
  }
  const start = issues.length;
  const allowed = ["from", "value", "weight"];
  const out = list.map((t: unknown, i) => {
    const at = `conversations[${i}]`;
    if (t === null || typeof t !== "object" || Array.isArray(t)) {
      issues.push({ code: "LT235", message: `${at} must be an object with "from" and "value", got ${typeName(t)}` });
      return null;
    }
    const rec = t as Record<string, unknown>;
    for (const key of Object.keys(rec)) {
      if (!allowed.includes(key)) issues.push({ code: "LT233", message: `${at} has unknown key ${str(key)}`, hint: `Allowed keys: ${allowed.join(", ")}` });
    }
    if (!("from" in rec) || !("value" in rec)) {
      issues.push({ code: "LT232", message: `${at} is missing "${"from" in rec ? "value" : "from"}"`, hint: 'Every ShareGPT turn needs "from" (system, human or gpt) and "value"' });
      return null;
    }
    const from = rec.from;
    if (typeof from !== "string") {
      issues.push({ code: "LT235", message: `${at}: from must be a string, got ${typeName(from)}` });
      return null;
    }
    const role = Object.hasOwn(SHAREGPT_ROLES, from) ? SHAREGPT_ROLES[from as keyof typeof SHAREGPT_ROLES] : null;
    if (role === null) {
      if (SHAREGPT_TOOL_SPEAKERS.includes(from)) {
        issues.push({ code: "LT238", message: `${at}: from "${from}" is not supported`, hint: "Remove tool/function turns; only system, human and gpt are supported" });
      } else {
        const lower = from.toLowerCase();
        const hint = Object.hasOwn(SHAREGPT_ROLES, lower) ? `Speakers are lowercase: use "${lower}"` : 'Use "system", "human" or "gpt"';
        issues.push({ code: "LT237", message: `${at}: from ${str(from)} is not recognised`, hint });
      }
      return null;
    }
    return { role, content: rec.value, ...("weight" in rec ? { weight: rec.weight } : {}) };
  });
  return issues.length > start || out.includes(null) ? null : out;
}

function checkRole(rec: Record<string, unknown>, at: string, issues: LineIssue[]): ChatRole | null {
  if (!("role" in rec)) {
    issues.push({ code: "LT232", message: `${at} is missing "role"`, hint: 'Every message needs "role": "system", "user" or "assistant"' });
    return null;
  }
  const role = rec.role;
  if (typeof role !== "string") {
    issues.push({ code: "LT235", message: `${at}: role must be a string, got ${typeName(role)}` });
    return null;
  }
  if ((CHAT_ROLES as readonly string[]).includes(role)) return role as ChatRole;
  if (["tool", "function", "ipython"].includes(role)) {
    issues.push({ code: "LT238", message: `${at}: role "${role}" is not supported`, hint: "Remove tool/function messages; only system, user and assistant are supported" });
  } else {
    issues.push({ code: "LT237", message: `${at}: role ${str(role)} is not recognised`, hint: roleHint(role) });
  }
  return null;
}

function checkContent(rec: Record<string, unknown>, at: string, issues: LineIssue[]): string | null {
  if (!("content" in rec)) {
    issues.push({ code: "LT232", message: `${at} is missing "content"`, hint: "Every message needs a non-empty \"content\" string" });
    return null;
  }
  const content = rec.content;
  if (Array.isArray(content)) {
    issues.push({ code: "LT238", message: `${at}: content parts (arrays) are not supported`, hint: "Use a plain string; images and other parts cannot be trained on" });
    return null;
  }
  if (content === null) {
    issues.push({ code: "LT239", message: `${at}: content is null`, hint: "Give every message text content" });
    return null;
  }
  if (typeof content !== "string") {
    issues.push({ code: "LT235", message: `${at}: content must be a string, got ${typeName(content)}` });
    return null;
  }
  if (content.trim() === "") {
    issues.push({ code: "LT239", message: `${at}: content is empty`, hint: "Remove the message or give it text" });
    return null;
  }
  return content;
}

/** Order rules; pushes at most one LT242 (the first violation) plus LT240/LT243/LT244. */
function checkOrder(messages: Message[], field: string, issues: LineIssue[]): boolean {
  let expected: ChatRole = "user";
  for (let i = 0; i < messages.length; i++) {
    const role = messages[i]!.role;
    if (role === "system") {
      if (i === 0) continue;
      issues.push({ code: "LT242", message: `${field}[${i}]: a system message must be the first message`, hint: "Move the system message to the start, or merge it into the first one" });
      return false;
    }
    if (role !== expected) {
      issues.push({
        code: "LT242",
        message: `${field}[${i}]: expected a ${expected} message, got ${role}`,
        hint: "After an optional system message, roles must alternate user, assistant, user, ... (Gemma and Mistral templates reject anything else); merge consecutive messages of the same role",
      });
      return false;
    }
    expected = role === "user" ? "assistant" : "user";
  }
  const assistants = messages.filter((m) => m.role === "assistant");
  if (assistants.length === 0) {
    issues.push({ code: "LT240", message: "No assistant message", hint: "Each example needs at least one assistant message to learn from" });
    return false;
  }
  if (messages[messages.length - 1]!.role !== "assistant") {
    issues.push({ code: "LT243", message: "The last message is from the user; it is not trained on", hint: "End each example with the assistant's answer" });
  }
  if (assistants.every((m) => m.weight === 0)) {
    issues.push({ code: "LT244", message: "Every assistant message has weight 0: nothing to train on", hint: "Set weight 1 (or remove weight) on at least one assistant message" });
  }
  return true;
}

/** "a string", "an array", "null", ... for messages. */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  const t = typeof v;
  return t === "object" ? "an object" : t === "string" ? "a string" : t === "number" ? "a number" : t === "boolean" ? "a boolean" : t;
}
