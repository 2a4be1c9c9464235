/** "Did you mean" for flags, commands and options: the closest word by edit distance. */

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The candidate closest to `word`, however far (undefined only when there is none). */
export function closest(
  word: string,
  candidates: Iterable<string>,
): { word: string; distance: number } | undefined {
  let best: { word: string; distance: number } | undefined;
  for (const c of candidates) {
    const distance = editDistance(word, c);
    if (!best || distance < best.distance) best = { word: c, distance };
  }
  return best;
}

/** The closest candidate when it is close enough to be a plausible typo. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const best = closest(word, candidates);
  return best && best.distance <= Math.max(2, Math.floor(word.length / 3)) ? best.word : undefined;
}
