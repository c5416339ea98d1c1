/**
 * Synthetic but realistic fine-tuning data for the dataset benchmarks:
 * chat examples with a few recurring system prompts, Zipf-distributed
 * English words, numbers, punctuation, some code, accents, CJK and emoji.
 * Deterministic (seeded), generated on the fly; big files go to the OS temp
 * directory, never into the repository.
 */
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import type { Example } from "../functions/_shared/dataset/example.ts";

const WORDS = (
  "the of and to a in is it you that he was for on are with as I his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find any new work part take get place made live where after back little only round man year came show every good me give our under name very through just form sentence great think say help low line differ turn cause much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal point mother world near build self earth father head stand own page should country found answer school grow study still learn plant cover food sun four between state keep eye never last let thought city tree cross farm hard start might story saw far sea draw left late run while press close night real life few north open seem together next white children begin got walk example ease paper group always music those both mark often letter until mile river car feet care second book carry took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual young ready above ever red list though feel talk bird soon body dog family direct pose leave song measure door product black short numeral class wind question happen complete ship area half rock order fire south problem piece told knew pass since top whole king space heard best hour better true during hundred five remember step early hold west ground interest reach fast verb sing listen six table travel less morning ten simple several vowel toward war lay against pattern slow center love person money serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive stood contain front teach week final gave green oh quick develop ocean warm free minute strong special mind behind clear tail produce fact street inch multiply nothing course stay wheel full force blue object decide surface deep moon island foot system busy test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes distant fill east paint language among"
).split(" ");
const EXTRAS = ["café", "naïve", "Zürich", "東京", "数据集", "😀", "🚀", "—", "résumé", "λ", "über", "señor", "Ωmega"];
const SYSTEMS = [
  "You are a helpful assistant.",
  "You are a customer-support agent for ACME Corp. Answer briefly and politely; escalate billing questions to a human. Never promise refunds.",
  "You are an expert Python tutor. Explain concepts step by step, show short code examples, and ask a follow-up question at the end.",
];

/** A seeded PRNG (xorshift32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function sentence(r: () => number): string {
  const n = 4 + Math.floor(r() * 18);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.02) words.push(EXTRAS[Math.floor(r() * EXTRAS.length)]!);
    else if (x < 0.05) words.push(String(Math.floor(r() * 10_000)));
    else words.push(WORDS[Math.floor(Math.pow(r(), 2.2) * WORDS.length)]!);
  }
  const s = words.join(" ");
  return s[0]!.toUpperCase() + s.slice(1) + (r() < 0.8 ? "." : r() < 0.5 ? "?" : "!");
}

function paragraph(r: () => number, sentences: number): string {
  return Array.from({ length: sentences }, () => sentence(r)).join(" ");
}

function code(r: () => number): string {
  const name = WORDS[Math.floor(r() * 200)]!;
  return `\n\n\`\`\`python\ndef ${name}_${Math.floor(r() * 100)}(items):\n    total = 0\n    for item in items:\n        total += item * ${Math.floor(r() * 10)}\n    return total\n\`\`\`\n\n`;
}

/** One chat example; sizes vary from a few sentences to a few paragraphs. */
export function chatExample(r: () => number): Example & { kind: "chat" } {
  const messages: Array<{ role: "system" | "user" | "assistant"; content: string }> = [];
  if (r() < 0.8) messages.push({ role: "system", content: SYSTEMS[Math.floor(r() * SYSTEMS.length)]! });
  const turns = r() < 0.7 ? 1 : 2 + Math.floor(r() * 2);
  for (let t = 0; t < turns; t++) {
    messages.push({ role: "user", content: paragraph(r, 1 + Math.floor(r() * 3)) });
    const answer = paragraph(r, 2 + Math.floor(r() * 6)) + (r() < 0.15 ? code(r) + paragraph(r, 2) : "\n\n" + paragraph(r, 1 + Math.floor(r() * 3)));
    messages.push({ role: "assistant", content: answer });
  }
  return { kind: "chat", messages };
}

/** The JSONL line of a chat example. */
export function chatLine(ex: Example & { kind: "chat" }): string {
  return JSON.stringify({ messages: ex.messages });
}

/** An in-memory JSONL file of about `bytes` bytes. */
export function corpusBytes(bytes: number, seed = 42): Uint8Array {
  const r = rng(seed);
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const l = chatLine(chatExample(r));
    lines.push(l);
    size += Buffer.byteLength(l) + 1;
  }
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

/** Stream a JSONL file of about `bytes` bytes to `path` without holding it in memory. */
export async function writeCorpus(path: string, bytes: number, seed = 42): Promise<number> {
  const r = rng(seed);
  const out = createWriteStream(path);
  let size = 0;
  let batch: string[] = [];
  while (size < bytes) {
    const l = chatLine(chatExample(r)) + "\n";
    batch.push(l);
    size += Buffer.byteLength(l);
    if (batch.length === 2000) {
      if (!out.write(batch.join(""))) await once(out, "drain");
      batch = [];
    }
  }
  out.write(batch.join(""));
  out.end();
  await once(out, "finish");
  return size;
}
