/**
 * REFERENCE ONLY (tests): canonicalizeISchedule from src/dkim/canonicalize.ts as it was at b949fb3
 * (a character loop decided whether a value was already canonical); scanner-differential.test.ts checks
 * the current one, which decides with a regular expression, gives the same text for every value.
 */
const FOLD = /\r?\n(?=[ \t])/g;
const WSP_RUN = /[ \t]+/g;

function isCanonicalISchedule(v: string): boolean {
  const n = v.length;
  if (n === 0) return true;
  if (v.charCodeAt(0) === 32 || v.charCodeAt(n - 1) === 32) return false;
  let previous = 0;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13) return false;
    if (c === 32 && (previous === 32 || previous === 44)) return false;
    if (c === 44 && previous === 32) return false;
    previous = c;
  }
  return true;
}

/** draft §7.2.1 steps 2 and 4-7 on one (already joined) value. */
export function canonicalizeISchedule(value: string): string {
  if (isCanonicalISchedule(value)) return value;
  let v = value.replace(FOLD, "").replace(WSP_RUN, " ");
  if (v.charCodeAt(0) === 32) v = v.slice(1);
  if (v.charCodeAt(v.length - 1) === 32) v = v.slice(0, -1);
  return v.indexOf(",") === -1 ? v : v.replace(/ ?, ?/g, ",");
}
