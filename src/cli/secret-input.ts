/**
 * Reading a secret on the command line: on a terminal, a prompt with echo off (the terminal in raw
 * mode, so nothing typed is shown or kept in the scrollback), asked twice; from a pipe or a file, the
 * first line, so that `echo "$PW" | isched ...` and a password manager's output work alike.
 */
import { CommandError } from "./errors.ts";

/** A line longer than this is no password; stop reading instead of buffering a stream forever. */
const MAX_LINE_BYTES = 4096;

/** The first line of standard input (without its line ending); undefined when it is empty. */
export async function readFirstLine(
  input: AsyncIterable<Buffer | string> = process.stdin,
): Promise<string | undefined> {
  let text = "";
  for await (const chunk of input) {
    text += chunk.toString();
    const end = text.indexOf("\n");
    if (end !== -1) return text.slice(0, end).replace(/\r$/, "");
    if (text.length > MAX_LINE_BYTES)
      throw new CommandError("the first line of standard input is too long for a password");
  }
  return text === "" ? undefined : text.replace(/\r$/, "");
}

/** Asks on the terminal with echo off; the answer ends with Enter. Ctrl-C cancels (exit 130). */
export function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  const output = process.stderr;
  output.write(question);
  input.setRawMode(true);
  input.setEncoding("utf8");
  input.resume();
  return new Promise((resolve, reject) => {
    let typed: string[] = [];
    const finish = (then: () => void) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      output.write("\n");
      then();
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish(() => resolve(typed.join("")));
        if (ch === "\u0003") return finish(() => reject(new CommandError("cancelled", 130)));
        if (ch === "\u0004" && typed.length === 0)
          return finish(() => reject(new CommandError("no password given")));
        if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
        else if (ch === "\u0015") typed = [];
        else if (ch >= " ") typed.push(ch);
      }
    };
    input.on("data", onData);
  });
}

/** On a terminal: asked twice, and the two must match. Otherwise: the first line of standard input. */
export async function readNewSecret(what: string): Promise<string> {
  if (process.stdin.isTTY) {
    const first = await promptHidden(`New ${what}: `);
    const second = await promptHidden(`The same ${what} again: `);
    if (first !== second) throw new CommandError(`the two ${what}s differ; nothing was changed`);
    return first;
  }
  const line = await readFirstLine();
  if (line === undefined) throw new CommandError(`no ${what} on standard input (give it as its first line)`);
  return line;
}
