/**
 * The normalised example every format turns into, and the per-line issue
 * shape the format checks produce.
 */
import type { ChatRole } from "../../../types/dataset.ts";
import type { IssueCode } from "./codes.ts";
import { Fnv64 } from "./hash.ts";

export type Message = { role: ChatRole; content: string; weight?: 0 | 1; name?: string };

/**
 * chat, conversation and instruction lines become messages rendered with the
 * model's chat template; prompt/completion stays raw text (no template).
 */
export type Example =
  | { kind: "chat"; messages: Message[] }
  | { kind: "completion"; prompt: string; completion: string };

/** A problem of one line before it gets its line number. */
export type LineIssue = { code: IssueCode; message: string; hint?: string; column?: number };

/**
 * A 64-bit fingerprint of the example's meaning: roles, contents, names and
 * weights in order. Whitespace between JSON tokens, key order, ignored keys
 * and `conversation_id` do not matter, so re-exports of the same example are
 * caught as duplicates.
 */
export function exampleHash(ex: Example): string {
  const h = new Fnv64();
  if (ex.kind === "completion") {
    h.byte(0x63);
    h.string(ex.prompt);
    h.string(ex.completion);
    return h.hex();
  }
  h.byte(0x6d);
  h.u32(ex.messages.length);
  for (const m of ex.messages) {
    h.byte(m.role === "system" ? 1 : m.role === "user" ? 2 : 3);
    h.string(m.content);
    h.byte(m.weight === undefined ? 2 : m.weight);
    if (m.name === undefined) h.byte(0);
    else {
      h.byte(1);
      h.string(m.name);
    }
  }
  return h.hex();
}
