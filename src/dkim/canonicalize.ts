/**
 * DKIM-for-HTTP canonicalisation: what exactly gets hashed.
 *
 * Header `ischedule-relaxed` (draft §7.2.1), applied in this order:
 *   1. lower-case the field name;  2. unfold;  3. join same-named fields with "," in wire order;
 *   4. collapse each run of WSP to one SP;  5. delete trailing WS;  6. delete WS around the colon;
 *   7. delete WS before and after every comma.
 * Header `relaxed` (RFC 6376 §3.4.2) is accepted on verify because peers vary: steps 1, 2, 4, 5, 6
 * per field instance, with repeated names in h= taking instances from the bottom up (§5.4.2).
 * Body `simple` (RFC 6376 §3.4.3): trailing CRLFs reduced to one CRLF, an empty body is one CRLF;
 * bytes are hashed as they are (a bare LF is not a line ending). Body `relaxed` (§3.4.4) on verify.
 *
 * Header names and values are byte strings (one char per byte, as HTTP stacks expose them);
 * hash them with latin1 encoding.
 */

export type HeaderCanonicalization = "ischedule-relaxed" | "relaxed";
export type BodyCanonicalization = "simple" | "relaxed";

export type HeaderField = readonly [name: string, value: string];
/** Header fields in wire order; the same name may appear more than once. */
export type HeaderFields = readonly HeaderField[];

/**
 * Field values by lower-cased name, in wire order. A request has about ten fields and a signature
 * names about six: two flat arrays and a scan are cheaper than a map of lists, and allocate only
 * for what is asked (this runs for every inbound request).
 */
export class HeaderIndex {
  readonly #names: string[] = [];
  readonly #values: string[] = [];

  constructor(fields: HeaderFields) {
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      this.#names.push(lowerFieldName(field[0]));
      this.#values.push(field[1]);
    }
  }

  has(lower: string): boolean {
    return this.#names.includes(lower);
  }

  /** Every value of the field, in wire order; undefined when absent. */
  get(lower: string): string[] | undefined {
    let found: string[] | undefined;
    for (let i = 0; i < this.#names.length; i++) {
      if (this.#names[i] !== lower) continue;
      if (found) found.push(this.#values[i]!);
      else found = [this.#values[i]!];
    }
    return found;
  }

  /** The values joined with "," (draft §7.2.1 step 3); undefined when absent. */
  joined(lower: string): string | undefined {
    let out: string | undefined;
    for (let i = 0; i < this.#names.length; i++) {
      if (this.#names[i] === lower) out = out === undefined ? this.#values[i]! : `${out},${this.#values[i]!}`;
    }
    return out;
  }
}

export const indexHeaders = (fields: HeaderFields): HeaderIndex => new HeaderIndex(fields);

// Requests name the same few fields over and over, in the request and in h=; lower-casing them is a
// measurable part of each verification, so the lower-case forms are remembered. The names are the
// peer's text: the memory is bounded and forgets everything when full.
const LOWER = new Map<string, string>();
const MAX_LOWER = 512;

/** The field name lower-cased (step 1 of both header canonicalisations). */
export function lowerFieldName(name: string): string {
  let lower = LOWER.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (LOWER.size >= MAX_LOWER) LOWER.clear();
    LOWER.set(name, lower);
  }
  return lower;
}

const FOLD = /\r?\n(?=[ \t])/g;
const WSP_RUN = /[ \t]+/g;

// What ischedule-relaxed changes inside a value: CR, LF, HT, a double space, space next to a comma.
const NOT_CANONICAL = /[\t\n\r]| [ ,]|, /;
const FOLD_OR_RUN = /[\t\n\r]| {2}/;

/**
 * True when a value is already canonical under ischedule-relaxed: none of NOT_CANONICAL, no
 * leading or trailing space. Most real values are, and this test is far cheaper than the
 * replacements (this runs for every signed header of every request, and for the signature itself).
 */
const isCanonicalISchedule = (v: string): boolean =>
  !NOT_CANONICAL.test(v) && v.charCodeAt(0) !== 32 && v.charCodeAt(v.length - 1) !== 32;

/** draft §7.2.1 steps 2 and 4-7 on one (already joined) value. */
export function canonicalizeISchedule(value: string): string {
  if (isCanonicalISchedule(value)) return value;
  // Single spaces only (a list written "a, b"): steps 2 and 4 would change nothing.
  let v = FOLD_OR_RUN.test(value) ? value.replace(FOLD, "").replace(WSP_RUN, " ") : value;
  if (v.charCodeAt(0) === 32) v = v.slice(1);
  if (v.charCodeAt(v.length - 1) === 32) v = v.slice(0, -1);
  return v.indexOf(",") === -1 ? v : v.replace(/ ?, ?/g, ",");
}

/** RFC 6376 §3.4.2 on one field value. */
export function canonicalizeRelaxed(value: string): string {
  let v = value.replace(FOLD, "").replace(WSP_RUN, " ");
  if (v.charCodeAt(0) === 32) v = v.slice(1);
  if (v.charCodeAt(v.length - 1) === 32) v = v.slice(0, -1);
  return v;
}

const isFwsChar = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10;

/**
 * The DKIM-Signature value with the b= value (and the whitespace around it) deleted, as hashed
 * (RFC 6376 §3.7 step 2). The rest of the value is left byte for byte.
 */
export function withoutSignatureData(signatureValue: string): string {
  let start = 0;
  while (start <= signatureValue.length) {
    let semi = signatureValue.indexOf(";", start);
    if (semi === -1) semi = signatureValue.length;
    let i = start;
    while (i < semi && isFwsChar(signatureValue.charCodeAt(i))) i++;
    if (signatureValue.charCodeAt(i) === 98 /* b */) {
      i++;
      while (i < semi && isFwsChar(signatureValue.charCodeAt(i))) i++;
      if (signatureValue.charCodeAt(i) === 61 /* = */) {
        return signatureValue.slice(0, i + 1) + withoutSignatureData(signatureValue.slice(semi));
      }
    }
    start = semi + 1;
  }
  return signatureValue;
}

export interface HeaderHashInputOptions {
  index: HeaderIndex;
  /** The names in h=, in order, as written in the signature. */
  signedHeaders: readonly string[];
  canonicalization: HeaderCanonicalization;
  /** The DKIM-Signature value with b= emptied (see withoutSignatureData). */
  signatureWithoutData: string;
}

/**
 * The exact text whose hash is signed: each header named in h= (in h= order, CRLF-terminated; a
 * name absent from the request contributes nothing), then the DKIM-Signature field, without CRLF.
 */
export function headerHashInput(o: HeaderHashInputOptions): string {
  let out = "";
  if (o.canonicalization === "ischedule-relaxed") {
    for (let i = 0; i < o.signedHeaders.length; i++) {
      const lower = lowerFieldName(o.signedHeaders[i]!);
      const value = o.index.joined(lower);
      if (value !== undefined) out += `${lower}:${canonicalizeISchedule(value)}\r\n`;
    }
    return `${out}dkim-signature:${canonicalizeISchedule(o.signatureWithoutData)}`;
  }
  const used = new Map<string, number>();
  for (const name of o.signedHeaders) {
    const lower = name.toLowerCase();
    const values = o.index.get(lower) ?? [];
    const k = used.get(lower) ?? 0;
    used.set(lower, k + 1);
    const value = values[values.length - 1 - k];
    if (value !== undefined) out += `${lower}:${canonicalizeRelaxed(value)}\r\n`;
  }
  return `${out}dkim-signature:${canonicalizeRelaxed(o.signatureWithoutData)}`;
}

const CRLF = new Uint8Array([13, 10]);
const EMPTY = new Uint8Array(0);

/**
 * The canonical body as a list of byte chunks to hash in order (no copy of the body for `simple`).
 */
export function canonicalBody(body: Uint8Array, canonicalization: BodyCanonicalization): Uint8Array[] {
  if (canonicalization === "simple") {
    const n = body.length;
    // The usual case: the body ends with exactly one CRLF and is already canonical.
    if (
      n >= 2 &&
      body[n - 2] === 13 &&
      body[n - 1] === 10 &&
      !(n >= 4 && body[n - 4] === 13 && body[n - 3] === 10)
    ) {
      return [body];
    }
    let end = n;
    while (end >= 2 && body[end - 2] === 13 && body[end - 1] === 10) end -= 2;
    return end === 0 ? [CRLF] : [body.subarray(0, end), CRLF];
  }
  return [relaxedBody(body)];
}

/** Length in bytes of the canonical body, for checking l=. */
export function canonicalBodyLength(body: Uint8Array, canonicalization: BodyCanonicalization): number {
  let n = 0;
  for (const chunk of canonicalBody(body, canonicalization)) n += chunk.length;
  return n;
}

function relaxedBody(body: Uint8Array): Uint8Array {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1");
  const lines = text.split("\r\n");
  // A body ending in CRLF yields a last empty element that is not a line.
  if (lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((line) => line.replace(WSP_RUN, " ").replace(/ $/, ""));
  while (out.length > 0 && out[out.length - 1] === "") out.pop();
  if (out.length === 0) return EMPTY;
  return Buffer.from(`${out.join("\r\n")}\r\n`, "latin1");
}
