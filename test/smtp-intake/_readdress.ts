/**
 * Moves addresses in a captured mail to another domain, for fixtures whose organiser and attendees
 * share one domain (test/fixtures/imip/README.md): every header and body line gets the new address;
 * a base64 part is decoded first and encoded again (76-character lines), so the calendar inside it
 * changes too. Nothing else in the message changes.
 */
export function readdress(raw: string, moves: Readonly<Record<string, string>>): string {
  const swap = (text: string): string =>
    Object.entries(moves).reduce((t, [from, to]) => t.split(from).join(to), text);
  const lines = raw.split(/\r?\n/);
  const eol = raw.includes("\r\n") ? "\r\n" : "\n";
  const out: string[] = [];
  let headers: string[] = [];
  let inHeaders = true;
  let base64: string[] | undefined;
  const flushBase64 = (): void => {
    if (!base64) return;
    const decoded = Buffer.from(base64.join(""), "base64").toString("utf8");
    const encoded = Buffer.from(swap(decoded), "utf8").toString("base64");
    out.push(...(encoded.match(/.{1,76}/g) ?? []));
    base64 = undefined;
  };
  for (const line of lines) {
    if (base64 && !line.startsWith("--") && line.trim() !== "") {
      base64.push(line.trim());
      continue;
    }
    flushBase64();
    if (line.startsWith("--")) {
      inHeaders = true;
      headers = [];
      out.push(line);
      continue;
    }
    if (inHeaders) {
      headers.push(line);
      if (line === "") {
        inHeaders = false;
        if (headers.some((h) => /^content-transfer-encoding:\s*base64\s*$/i.test(h))) base64 = [];
      }
    }
    out.push(swap(line));
  }
  flushBase64();
  return out.join(eol);
}
