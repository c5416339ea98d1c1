/**
 * The catalogue of dataset problem codes (LT200–LT299). One entry per code:
 * its severity and a short title. docs/errors-lt2xx.md documents each one
 * with the fix, and a test keeps the two in step.
 */

/** Severity: errors make a line (or the file) invalid, warnings never do. */
export type Severity = "error" | "warning";

/** Every code the engine emits. */
export const ISSUE_CODES = {
  // The file as a whole.
  LT200: { severity: "error", title: "File too large" },
  LT201: { severity: "error", title: "Compressed or binary file" },
  LT202: { severity: "error", title: "NUL byte in file" },
  LT203: { severity: "error", title: "UTF-16 or UTF-32 file" },
  LT204: { severity: "warning", title: "UTF-8 byte order mark" },
  LT205: { severity: "error", title: "No data" },
  LT206: { severity: "error", title: "Too few examples" },
  LT207: { severity: "error", title: "Too many invalid lines" },
  // Bytes and JSON of one line.
  LT210: { severity: "error", title: "Invalid UTF-8" },
  LT211: { severity: "error", title: "Line too long" },
  LT212: { severity: "warning", title: "Blank line" },
  LT213: { severity: "error", title: "Invalid JSON" },
  LT214: { severity: "error", title: "NaN or Infinity" },
  LT215: { severity: "error", title: "Duplicate key" },
  LT216: { severity: "error", title: "Nesting too deep" },
  LT217: { severity: "error", title: "NUL character in string" },
  LT218: { severity: "error", title: "Lone surrogate in string" },
  LT219: { severity: "error", title: "Not a JSON object" },
  // The shape of one example.
  LT230: { severity: "error", title: "Unknown format" },
  LT231: { severity: "error", title: "Mixed formats" },
  LT232: { severity: "error", title: "Missing key" },
  LT233: { severity: "error", title: "Unknown key" },
  LT234: { severity: "warning", title: "Ignored key" },
  LT235: { severity: "error", title: "Wrong type" },
  LT236: { severity: "error", title: "No messages" },
  LT237: { severity: "error", title: "Unrecognised role" },
  LT238: { severity: "error", title: "Unsupported feature" },
  LT239: { severity: "error", title: "Empty content" },
  LT240: { severity: "error", title: "No assistant message" },
  LT241: { severity: "error", title: "Invalid weight" },
  LT242: { severity: "error", title: "Roles out of order" },
  LT243: { severity: "warning", title: "Ends with a user message" },
  LT244: { severity: "warning", title: "Nothing to train on" },
  LT245: { severity: "error", title: "Invalid name" },
  // The file as a whole, found at the end.
  LT246: { severity: "error", title: "Too many lines to skip" },
  // Across examples and models.
  LT260: { severity: "warning", title: "Duplicate example" },
  LT261: { severity: "warning", title: "Longer than the context" },
  LT262: { severity: "warning", title: "Template control text in content" },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type IssueCode = keyof typeof ISSUE_CODES;

/** The severity of a code. */
export function severityOf(code: IssueCode): Severity {
  return ISSUE_CODES[code].severity;
}
