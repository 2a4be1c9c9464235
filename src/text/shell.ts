/** Writing a word for a POSIX shell, for the commands the console and the CLI print to be pasted. */

/** `word` as one shell word: as it is when it is safe, else in single quotes. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : shellQuote(word);
}

/** `word` in single quotes, whatever it holds. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, "'\\''")}'`;
}
