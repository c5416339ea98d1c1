/**
 * Generates demo/data/customer-support.jsonl: customer-support chats for
 * Helio, a fictional smart-thermostat company, written for this project.
 *
 *   npx tsx demo/data/generate.ts            # writes the file
 *   npx tsx demo/data/generate.ts --check    # fails if the file is stale
 *
 * Deterministic (a seeded PRNG, no clock): the same script always writes the
 * same bytes. Each example is an intent (demo/data/intents.ts) with its
 * slots filled in: several phrasings per question, details that change per
 * customer (devices, order numbers, versions, rooms...), and some
 * multi-turn conversations. Exact duplicates are skipped, since the
 * validator reports them (LT260).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { INTENTS, SYSTEM_PROMPTS, type Slots } from "./intents.ts";

export const DATASET_PATH = resolve(import.meta.dirname, "customer-support.jsonl");
export const EXAMPLES = 360;
const SEED = 20261126;

/** mulberry32: small, fast, good enough to pick template slots. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST_NAMES = ["Amara", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca",
  "Maya", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yara", "Zoe"];
const DEVICES = ["Helio Thermostat 2", "Helio Thermostat Mini", "Helio Room Sensor", "Helio Radiator Valve", "Helio Energy Monitor"];
const HUB_DEVICES = ["Helio Thermostat 2", "Helio Thermostat Mini"];
const ROOMS = ["living room", "bedroom", "home office", "nursery", "kitchen", "hallway", "guest room", "basement", "attic bedroom", "bathroom"];
const PHONES = ["iPhone 13 on iOS 17.5", "iPhone 15 on iOS 18.1", "Pixel 8 on Android 14", "Galaxy S23 on Android 14",
  "Galaxy A54 on Android 13", "iPad Air on iPadOS 17.4", "OnePlus 11 on Android 14", "iPhone SE on iOS 16.7"];
const ROUTERS = ["a Netgear Orbi mesh", "a TP-Link Deco mesh", "an Eero 6", "the router from my internet provider", "an ASUS RT-AX58U", "a Google Nest Wifi"];
const HVAC = ["a gas furnace with central air", "an air-source heat pump", "a combi boiler with radiators", "electric baseboard heaters",
  "a heat pump with electric auxiliary heat", "an oil boiler", "underfloor heating with a boiler", "a ductless mini-split"];
const CARRIERS = ["DHL", "UPS", "DPD", "FedEx", "Royal Mail", "PostNL"];
const ASSISTANTS = ["Alexa", "Google Home", "Apple Home", "SmartThings"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const ERRORS = ["E-12", "E-17", "E-21", "E-34", "E-40"];

/** Fill a template's {slot} markers. */
function fill(template: string, slots: Slots): string {
  return template.replace(/\{([a-z_]+)\}/g, (_, key: string) => {
    const value = slots[key];
    if (value === undefined) throw new Error(`Template slot "${key}" has no value in: ${template}`);
    return value;
  });
}

function slotsFor(rand: () => number, n: number): Slots {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const month = int(0, 11);
  const celsius = int(18, 23);
  const fw = `${int(4, 5)}.${int(0, 9)}.${int(0, 30)}`;
  const plan = rand() < 0.6 ? "monthly" : "yearly";
  return {
    name: pick(FIRST_NAMES),
    device: pick(DEVICES),
    hub: pick(HUB_DEVICES),
    room: pick(ROOMS),
    other_room: pick(ROOMS),
    phone: pick(PHONES),
    router: pick(ROUTERS),
    hvac: pick(HVAC),
    carrier: pick(CARRIERS),
    assistant: pick(ASSISTANTS),
    error: pick(ERRORS),
    order: `HL-${String(int(100000, 999999))}`,
    ticket: `#${int(40000, 89999)}`,
    serial: `H${int(2, 9)}${String.fromCharCode(65 + int(0, 25))}${String(int(1000000, 9999999))}`,
    days: String(int(2, 27)),
    day: String(int(1, 28)),
    month: MONTHS[month]!,
    next_month: MONTHS[(month + 1) % 12]!,
    amount: `${int(3, 3)}.99`,
    yearly: "39.00",
    plan,
    price: plan === "monthly" ? "3.99 a month" : "39 a year",
    celsius: String(celsius),
    offset: (int(5, 30) / 10).toFixed(1),
    reading: (celsius + int(1, 3) + int(0, 9) / 10).toFixed(1),
    fw_old: fw,
    fw_new: `${int(5, 5)}.${int(2, 4)}.${int(0, 9)}`,
    percent: String(int(12, 41)),
    hours: String(int(2, 9)),
    battery_pct: String(int(3, 14)),
    members: String(int(2, 5)),
    n: String(n),
  };
}

type Message = { role: "system" | "user" | "assistant"; content: string };

/** The dataset as JSON Lines: EXAMPLES distinct chat examples. */
export function generate(): string {
  const rand = prng(SEED);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (let i = 0; lines.length < EXAMPLES; i++) {
    if (i > EXAMPLES * 20) throw new Error("Templates too few to make distinct examples");
    const intent = INTENTS[i % INTENTS.length]!;
    const slots = slotsFor(rand, i);
    const system = SYSTEM_PROMPTS[Math.floor(rand() * SYSTEM_PROMPTS.length)]!;
    const variant = intent.variants[Math.floor(rand() * intent.variants.length)]!;
    const messages: Message[] = [{ role: "system", content: system }];
    variant.forEach((turn, t) => {
      const text = turn[Math.floor(rand() * turn.length)]!;
      messages.push({ role: t % 2 === 0 ? "user" : "assistant", content: fill(text, slots) });
    });
    const line = JSON.stringify({ messages });
    if (seen.has(line)) continue;
    seen.add(line);
    lines.push(line);
  }
  return lines.join("\n") + "\n";
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const text = generate();
  if (process.argv.includes("--check")) {
    const current = readFileSync(DATASET_PATH, "utf8");
    if (current !== text) {
      console.error(`${DATASET_PATH} is stale: run npx tsx demo/data/generate.ts`);
      process.exit(1);
    }
    console.log(`${DATASET_PATH} is up to date (${EXAMPLES} examples)`);
  } else {
    writeFileSync(DATASET_PATH, text);
    console.log(`wrote ${EXAMPLES} examples, ${text.length} bytes to ${DATASET_PATH}`);
  }
}
