/**
 * The tokenizer and tree builder behind xml-reader.ts, on text already decoded, size-checked and
 * with line ends normalised. Private to this folder: use parseXml().
 */

export interface XmlElement {
  /** Namespace URI; "" for none. */
  readonly ns: string;
  /** Local name. */
  readonly name: string;
  /** Unprefixed attributes by local name, prefixed ones as "{namespace}local". xmlns declarations are left out. */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** The element's own character data (text and CDATA, entities decoded), children's text excluded. */
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

export class XmlSyntaxError extends SyntaxError {
  override readonly name = "XmlSyntaxError";
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(line === undefined ? message : `${message} at line ${line}, column ${column}`);
  }
}

const XML_NS = "http://www.w3.org/XML/1998/namespace";

// XML 1.0 §2.3 Name, without ":" (Namespaces in XML §3 NCName).
const NAME_START =
  "A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD";
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F\\u2040`;
const QNAME = new RegExp(`[${NAME_START}][${NAME_CHAR}]*(?::[${NAME_START}][${NAME_CHAR}]*)?`, "y");
// XML 1.0 §2.2 Char; lone surrogates are not characters.
const NOT_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const PREDEFINED: Readonly<Record<string, string>> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

interface Frame {
  qname: string;
  ns: string;
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string[];
  line: number;
  column: number;
  bindings: Map<string, string> | undefined;
}

/** Builds the tree of one document; throws XmlSyntaxError with the line and column. */
export class Parser {
  private pos = 0;
  private readonly stack: Frame[] = [];
  private root: XmlElement | undefined;

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
  ) {}

  document(): XmlElement {
    const bad = NOT_CHAR.exec(this.s);
    if (bad) {
      const cp = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
      this.fail(`Character U+${cp} is not allowed in XML`, bad.index);
    }
    if (this.s.startsWith("\uFEFF")) this.pos = 1;
    if (this.s.startsWith("<?xml", this.pos) && /[\s?]/.test(this.s[this.pos + 5] ?? ""))
      this.skipPast("?>", "XML declaration");
    const s = this.s;
    while (this.pos < s.length) {
      const lt = s.indexOf("<", this.pos);
      if (lt !== this.pos) this.text(lt === -1 ? s.length : lt);
      else if (s.startsWith("</", lt)) this.closeTag();
      else if (s.startsWith("<!--", lt)) this.skipPast("-->", "comment");
      else if (s.startsWith("<![CDATA[", lt)) this.cdata();
      else if (s.startsWith("<?", lt)) this.processingInstruction();
      else if (/^<!doctype/i.test(s.slice(lt, lt + 9))) {
        this.fail("DOCTYPE declarations are not allowed (no DTD, no entities)", lt);
      } else if (s.startsWith("<!", lt)) this.fail("Markup declarations are not allowed", lt);
      else this.openTag();
    }
    const open = this.stack.at(-1);
    if (open) {
      this.fail(
        `Unexpected end of document: <${open.qname}> opened at line ${open.line}, column ${open.column} is not closed`,
        s.length,
      );
    }
    if (!this.root) this.fail("The document has no root element", s.length);
    return this.root;
  }

  private text(end: number): void {
    const raw = this.s.slice(this.pos, end);
    const top = this.stack.at(-1);
    if (!top) {
      if (raw.trim() !== "")
        this.fail(
          this.root ? "Text after the root element" : "Text before the root element",
          this.pos + raw.search(/\S/),
        );
    } else top.text.push(this.decodeEntities(raw, this.pos));
    this.pos = end;
  }

  private cdata(): void {
    const start = this.pos;
    const end = this.s.indexOf("]]>", start + 9);
    if (end === -1) this.fail("Unterminated CDATA section", start);
    const top = this.stack.at(-1);
    if (!top) this.fail("CDATA outside the root element", start);
    top.text.push(this.s.slice(start + 9, end));
    this.pos = end + 3;
  }

  private processingInstruction(): void {
    const start = this.pos;
    if (/^<\?xml[\s?]/i.test(this.s.slice(start, start + 6)))
      this.fail("An XML declaration is only allowed at the start", start);
    this.skipPast("?>", "processing instruction");
  }

  private skipPast(terminator: string, what: string): void {
    const end = this.s.indexOf(terminator, this.pos + 2);
    if (end === -1) this.fail(`Unterminated ${what}`, this.pos);
    this.pos = end + terminator.length;
  }

  private openTag(): void {
    const start = this.pos;
    if (this.root && this.stack.length === 0) this.fail("A second root element", start);
    if (this.stack.length >= this.maxDepth)
      this.fail(`Elements are nested deeper than ${this.maxDepth} levels`, start);
    this.pos++;
    const qname = this.name("an element name");
    const raw: [string, string, number][] = [];
    const names = new Set<string>();
    const s = this.s;
    for (;;) {
      const ws = this.skipSpace();
      if (s.startsWith("/>", this.pos) || s[this.pos] === ">") break;
      if (this.pos >= s.length) this.fail(`Unterminated start tag <${qname}>`, start);
      if (!ws) this.fail(`Expected whitespace, ">" or "/>" in <${qname}>`, this.pos);
      const at = this.pos;
      const attr = this.name("an attribute name");
      this.skipSpace();
      if (s[this.pos] !== "=") this.fail(`Attribute ${attr} has no "=" value`, this.pos);
      this.pos++;
      this.skipSpace();
      const quote = s[this.pos];
      if (quote !== '"' && quote !== "'") this.fail(`The value of attribute ${attr} is not quoted`, this.pos);
      const end = s.indexOf(quote, this.pos + 1);
      if (end === -1) this.fail(`Unterminated value of attribute ${attr}`, this.pos);
      const value = s.slice(this.pos + 1, end);
      const lt = value.indexOf("<");
      if (lt !== -1) this.fail(`"<" in the value of attribute ${attr}`, this.pos + 1 + lt);
      // XML 1.0 §3.3.3: literal whitespace characters become spaces; character references stay.
      const decoded = this.decodeEntities(value.replace(/[\t\n]/g, " "), this.pos + 1);
      if (names.has(attr)) this.fail(`Attribute ${attr} appears twice`, at);
      names.add(attr);
      raw.push([attr, decoded, at]);
      this.pos = end + 1;
    }
    const selfClosing = s[this.pos] === "/";
    this.pos += selfClosing ? 2 : 1;

    const declared = new Map<string, string>();
    for (const [attr, value, at] of raw) {
      if (attr === "xmlns") declared.set("", value);
      else if (attr.startsWith("xmlns:")) {
        const prefix = attr.slice(6);
        if (prefix === "xmlns" || (prefix === "xml" && value !== XML_NS))
          this.fail(`Prefix ${prefix} cannot be declared`, at);
        if (value === "") this.fail(`Prefix ${prefix} cannot be bound to an empty namespace`, at);
        declared.set(prefix, value);
      }
    }
    const bindings = declared.size > 0 ? declared : undefined;
    const frame: Frame = {
      qname,
      ns: "",
      name: qname,
      attrs: Object.create(null),
      children: [],
      text: [],
      ...this.lineColumn(start),
      bindings,
    };
    this.stack.push(frame);
    [frame.ns, frame.name] = this.resolve(qname, true, start);
    for (const [attr, value, at] of raw) {
      if (attr === "xmlns" || attr.startsWith("xmlns:")) continue;
      const [ns, local] = this.resolve(attr, false, at);
      const key = ns === "" ? local : `{${ns}}${local}`;
      if (key in frame.attrs) this.fail(`Attribute ${key} appears twice`, at);
      frame.attrs[key] = value;
    }
    if (selfClosing) this.pop();
  }

  private closeTag(): void {
    const start = this.pos;
    this.pos += 2;
    const qname = this.name("an element name");
    this.skipSpace();
    if (this.s[this.pos] !== ">") this.fail(`Expected ">" to end </${qname}>`, this.pos);
    this.pos++;
    const top = this.stack.at(-1);
    if (!top) this.fail(`Unexpected closing tag </${qname}> with no open element`, start);
    if (top.qname !== qname) {
      this.fail(
        `Unexpected closing tag </${qname}>: <${top.qname}> opened at line ${top.line}, column ${top.column} is still open`,
        start,
      );
    }
    this.pop();
  }

  private pop(): void {
    const f = this.stack.pop()!;
    const el: XmlElement = {
      ns: f.ns,
      name: f.name,
      attrs: f.attrs,
      children: f.children,
      text: f.text.join(""),
      line: f.line,
      column: f.column,
    };
    const parent = this.stack.at(-1);
    if (parent) parent.children.push(el);
    else this.root = el;
  }

  /** [namespace, local name]; unprefixed attributes have no namespace (Namespaces in XML §6.2). */
  private resolve(qname: string, isElement: boolean, at: number): [string, string] {
    const colon = qname.indexOf(":");
    const prefix = colon === -1 ? "" : qname.slice(0, colon);
    const local = colon === -1 ? qname : qname.slice(colon + 1);
    if (prefix === "" && !isElement) return ["", local];
    if (prefix === "xml") return [XML_NS, local];
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const uri = this.stack[i]!.bindings?.get(prefix);
      if (uri !== undefined) return [uri, local];
    }
    if (prefix === "") return ["", local];
    return this.fail(`Namespace prefix ${prefix} is not declared`, at);
  }

  private name(what: string): string {
    QNAME.lastIndex = this.pos;
    const m = QNAME.exec(this.s);
    if (!m) this.fail(`Expected ${what}`, this.pos);
    this.pos += m[0].length;
    return m[0];
  }

  private skipSpace(): boolean {
    const from = this.pos;
    while (" \t\n".includes(this.s[this.pos] ?? "x")) this.pos++;
    return this.pos > from;
  }

  private decodeEntities(raw: string, offset: number): string {
    if (!raw.includes("&")) return raw;
    return raw.replace(/&([^;&\s<]{0,12});?/g, (whole, ref: string, index: number) => {
      if (!whole.endsWith(";")) return this.fail(`"&" must start an entity such as &amp;`, offset + index);
      if (ref.startsWith("#")) {
        const cp = /^#x[0-9A-Fa-f]{1,6}$/.test(ref)
          ? Number.parseInt(ref.slice(2), 16)
          : /^#[0-9]{1,7}$/.test(ref)
            ? Number(ref.slice(1))
            : Number.NaN;
        if (!Number.isNaN(cp) && cp <= 0x10ffff) {
          const c = String.fromCodePoint(cp);
          if (!NOT_CHAR.test(c)) return c;
        }
        return this.fail(`&${ref}; is not a valid character reference`, offset + index);
      }
      const value = PREDEFINED[ref];
      if (value === undefined || !Object.hasOwn(PREDEFINED, ref)) {
        return this.fail(
          `Undefined entity &${ref}; (only &lt; &gt; &amp; &quot; &apos; and character references are allowed)`,
          offset + index,
        );
      }
      return value;
    });
  }

  // Positions asked for while parsing only grow, so counting resumes where it stopped: linear overall.
  private lineAt = { pos: 0, line: 1, lineStart: 0 };

  private lineColumn(pos: number): { line: number; column: number } {
    const resume = pos >= this.lineAt.pos;
    let { line, lineStart } = resume ? this.lineAt : { line: 1, lineStart: 0 };
    // No line break lies between lineStart and lineAt.pos, so the search starts at lineAt.pos.
    for (
      let i = this.s.indexOf("\n", resume ? this.lineAt.pos : 0);
      i !== -1 && i < pos;
      i = this.s.indexOf("\n", i + 1)
    ) {
      line++;
      lineStart = i + 1;
    }
    this.lineAt = { pos, line, lineStart };
    return { line, column: pos - lineStart + 1 };
  }

  private fail(message: string, pos: number): never {
    const { line, column } = this.lineColumn(pos);
    throw new XmlSyntaxError(message, line, column);
  }
}
