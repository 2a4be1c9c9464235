/** What a SQLite database's write-ahead log holds, read from the -wal file itself. */
import { readFileSync } from "node:fs";

/** Committed transactions in the WAL so far: frames that end a commit, of the WAL's current salt. */
export function walCommits(path: string): number {
  const wal = readFileSync(`${path}-wal`);
  if (wal.byteLength < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salt = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.byteLength; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt[0] || wal.readUInt32BE(at + 12) !== salt[1]) break;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return commits;
}
