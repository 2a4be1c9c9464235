/**
 * A strict first pass over iCalendar text (RFC 5545 §3.1): unfolds lines, checks that each one is a
 * content line (name, parameters, ":" value) and that BEGIN/END pairs nest, and builds a tree of
 * components with line numbers.
 *
 * Why not leave this to ical.js: it accepts END:VEVENT closing a BEGIN:VTODO (the draft's own A.3
 * example does that), END without BEGIN and control characters, and its errors carry no line numbers
 * and quote whole lines. This pass gives the peer a precise message, and hands ical.js text it parses
 * in the same order, so the tree here lines up one-to-one with ical.js's jCal.
 */
import { clip, invalidData } from "./errors.ts";

export interface ScanProperty {
  /** Upper-case. */
  readonly name: string;
  /** 1-based line of the first physical line. */
  readonly line: number;
  /** The raw value after the first unquoted ":". */
  readonly value: string;
}

export interface ScanComponent {
  /** Upper-case. */
  readonly name: string;
  readonly line: number;
  readonly properties: ScanProperty[];
  readonly components: ScanComponent[];
}

export interface ScanLine {
  readonly line: number;
  readonly text: string;
}

export interface Scan {
  readonly calendar: ScanComponent;
  /** Unfolded content lines, in order. */
  readonly lines: readonly ScanLine[];
  /** The same lines joined with CRLF: what ical.js parses. */
  readonly unfolded: string;
}

const NAME = /[A-Za-z0-9-]+/y;
const PARAM_TEXT = /[^";:,]*/y;
const COMPONENT_NAME = /^[A-Za-z0-9-]+$/;
// VCALENDAR > VPOLL > VEVENT > VALARM is 4 deep; a limit keeps recursive walks off the stack's edge.
const MAX_DEPTH = 12;
// RFC 5545 §3.1: CONTROL = %x00-08 / %x0A-1F / %x7F (HTAB is allowed).
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Throws ItipError("invalid-calendar-data") naming the line. */
export function scanCalendar(text: string): Scan {
  const lines = unfold(text.startsWith("\uFEFF") ? text.slice(1) : text);
  if (lines.length === 0) throw invalidData("The body is empty; it must hold an iCalendar object (RFC 5545)");

  let calendar: ScanComponent | undefined;
  const stack: ScanComponent[] = [];
  for (const { line, text: content } of lines) {
    const parsed = splitContentLine(content);
    if (stack.length === 0 && !calendar && (typeof parsed === "string" || parsed.name !== "BEGIN")) {
      throw invalidData(`The body is not an iCalendar object: line ${line} is not BEGIN:VCALENDAR`);
    }
    if (typeof parsed === "string") throw invalidData(`Line ${line}: ${parsed}`);
    const control = CONTROL.exec(content);
    if (control) {
      const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
      throw invalidData(
        `Line ${line} contains the control character U+${code}, which iCalendar does not allow (RFC 5545 §3.1)`,
      );
    }
    const { name, value } = parsed;
    if (name === "BEGIN" || name === "END") {
      const component = value.trim().toUpperCase();
      if (!COMPONENT_NAME.test(component))
        throw invalidData(`Line ${line}: ${name}: has no valid component name`);
      if (name === "BEGIN") {
        if (stack.length >= MAX_DEPTH)
          throw invalidData(`Line ${line}: components are nested more than ${MAX_DEPTH} deep`);
        const node: ScanComponent = { name: component, line, properties: [], components: [] };
        const parent = stack[stack.length - 1];
        if (parent) {
          if (component === "VCALENDAR")
            throw invalidData(`Line ${line}: a VCALENDAR cannot be nested in a ${parent.name}`);
          parent.components.push(node);
        } else if (calendar) {
          throw invalidData(
            `The body holds more than one iCalendar object (another BEGIN:${clip(component, 20)} on line ${line}); a scheduling message is exactly one VCALENDAR (draft §6.1)`,
          );
        } else if (component !== "VCALENDAR") {
          throw invalidData(
            `The body is not an iCalendar object: it starts with BEGIN:${clip(component, 20)} on line ${line}, not BEGIN:VCALENDAR`,
          );
        } else {
          calendar = node;
        }
        stack.push(node);
      } else {
        const open = stack.pop();
        if (!open) throw invalidData(`Line ${line}: END:${clip(component, 20)} has no matching BEGIN`);
        if (open.name !== component) {
          throw invalidData(
            `Line ${line}: END:${clip(component, 20)} does not close BEGIN:${clip(open.name, 20)} of line ${open.line}`,
          );
        }
      }
      continue;
    }
    const current = stack[stack.length - 1];
    if (!current) throw invalidData(`Line ${line}: ${clip(name, 30)} appears after END:VCALENDAR`);
    current.properties.push({ name, line, value });
  }
  const unclosed = stack[stack.length - 1];
  if (unclosed) {
    throw invalidData(
      `BEGIN:${clip(unclosed.name, 20)} on line ${unclosed.line} is never closed by END:${clip(unclosed.name, 20)}`,
    );
  }
  // A non-empty body either starts with BEGIN:VCALENDAR or was refused above.
  return { calendar: calendar!, lines, unfolded: `${lines.map((l) => l.text).join("\r\n")}\r\n` };
}

/**
 * RFC 5545 §3.1: a line starting with a space or tab continues the previous one. LF-only line ends are
 * accepted (common in files and mail); blank lines are skipped.
 */
function unfold(text: string): ScanLine[] {
  const result: { line: number; text: string }[] = [];
  const physical = text.split(/\r?\n/);
  for (let i = 0; i < physical.length; i++) {
    const raw = physical[i]!;
    if (raw === "") continue;
    if (raw[0] === " " || raw[0] === "\t") {
      const previous = result[result.length - 1];
      if (!previous) {
        throw invalidData(
          `Line ${i + 1} starts with whitespace (a folded continuation) but no content line precedes it`,
        );
      }
      previous.text += raw.slice(1);
      continue;
    }
    result.push({ line: i + 1, text: raw });
  }
  return result;
}

/**
 * contentline = name *(";" param) ":" value; param = param-name "=" param-value *("," param-value);
 * param-value = paramtext / quoted-string (RFC 5545 §3.1). Returns the problem as a string.
 */
function splitContentLine(text: string): { name: string; value: string } | string {
  NAME.lastIndex = 0;
  const name = NAME.exec(text)?.[0];
  if (!name) return "not an iCalendar content line (expected NAME:value)";
  // Only an error message needs the shown name: built on demand, this runs for every line.
  const shown = () => clip(name.toUpperCase(), 30);
  let i = name.length;
  while (text[i] === ";") {
    NAME.lastIndex = i + 1;
    const param = NAME.exec(text)?.[0];
    if (!param) return `a parameter of ${shown()} has no name`;
    i += 1 + param.length;
    if (text[i] !== "=")
      return `parameter ${clip(param.toUpperCase(), 30)} of ${shown()} has no "=" and value`;
    i++;
    for (;;) {
      if (text[i] === '"') {
        const close = text.indexOf('"', i + 1);
        if (close === -1)
          return `a quoted value of parameter ${clip(param.toUpperCase(), 30)} of ${shown()} is not closed`;
        i = close + 1;
      } else {
        PARAM_TEXT.lastIndex = i;
        i += PARAM_TEXT.exec(text)![0].length;
      }
      if (text[i] !== ",") break;
      i++;
    }
  }
  if (text[i] !== ":") return `${shown()} is not followed by ":" and a value`;
  return { name: name.toUpperCase(), value: text.slice(i + 1) };
}
