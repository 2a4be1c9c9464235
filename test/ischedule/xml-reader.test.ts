import { describe, expect, test } from "bun:test";
import { deepText, parseXml, XmlSyntaxError } from "../../src/ischedule/xml-reader.ts";

const IS = "urn:ietf:params:xml:ns:ischedule";

/** Parses, expects an XmlSyntaxError, and returns it. */
function refusal(input: string | Uint8Array, options?: Parameters<typeof parseXml>[1]): XmlSyntaxError {
  try {
    parseXml(input, options);
  } catch (e) {
    if (e instanceof XmlSyntaxError) return e;
    throw e;
  }
  throw new Error("expected an XmlSyntaxError, the document was accepted");
}

/** Milliseconds `fn` takes. */
function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

describe("parseXml() reads", () => {
  test("namespaces, default and prefixed, with attributes", () => {
    const root = parseXml(
      `<?xml version="1.0" encoding="utf-8" ?>\n<x:a xmlns:x="${IS}" xmlns="urn:other" k="v" x:p="q"><b/><x:c>t</x:c></x:a>`,
    );
    expect(root).toMatchObject({ ns: IS, name: "a", line: 2, column: 1 });
    expect({ ...root.attrs }).toEqual({ k: "v", [`{${IS}}p`]: "q" });
    expect(root.children.map((c) => [c.ns, c.name, c.text])).toEqual([
      ["urn:other", "b", ""],
      [IS, "c", "t"],
    ]);
  });

  test("the five predefined entities and character references", () => {
    const root = parseXml(`<a t="&quot;&apos;&#x41;&#9;">&lt;&gt;&amp;&#65;&#x1F600;</a>`);
    expect(root.text).toBe("<>&A\u{1F600}");
    expect(root.attrs.t).toBe(`"'A\t`);
  });

  test("CDATA as text, comments and processing instructions skipped", () => {
    const root = parseXml(`<!-- c --><?pi x?><a>x<![CDATA[<&]]>y<!-- <b/> --><?p q?>z</a><!-- end -->`);
    expect(root.text).toBe("x<&yz");
    expect(root.children).toHaveLength(0);
  });

  test("CRLF as LF, but a CR written as &#13; survives", () => {
    expect(parseXml("<a>1\r\n2\r3&#13;\n</a>").text).toBe("1\n2\n3\r\n");
  });

  test("attribute whitespace normalised to spaces (XML 1.0 §3.3.3)", () => {
    expect(parseXml('<a t="x\ny\tz&#10;"/>').attrs.t).toBe("x y z\n");
  });

  test("UTF-8 bytes with a BOM, and a declared ISO-8859-1 document", () => {
    const utf8 = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("<a>é</a>")]);
    expect(parseXml(utf8).text).toBe("é");
    const latin1 = new Uint8Array([
      ...new TextEncoder().encode('<?xml version="1.0" encoding="ISO-8859-1"?><a>'),
      0xe9,
      ...new TextEncoder().encode("</a>"),
    ]);
    expect(parseXml(latin1).text).toBe("é");
  });

  test("UTF-16 with a byte order mark", () => {
    const le = Buffer.from("\uFEFF<a>é</a>", "utf16le");
    expect(parseXml(new Uint8Array(le)).text).toBe("é");
  });

  test("deepText() concatenates descendants", () => {
    expect(deepText(parseXml("<a>1<b>2<c>3</c></b>4</a>"))).toBe("1423");
  });

  test("an attribute named __proto__ as plain data", () => {
    const root = parseXml('<a __proto__="x" constructor="y"/>');
    expect(Object.getOwnPropertyDescriptor(root.attrs, "__proto__")?.value).toBe("x");
    expect(Object.getPrototypeOf(root.attrs)).toBeNull();
    expect(Object.keys(root.attrs)).toEqual(["__proto__", "constructor"]);
  });

  test("a 1 MiB document of many elements in linear time", () => {
    const many = `<a>${"<b x='1'>t</b>\n".repeat(60_000)}</a>`;
    let count = 0;
    const ms = timed(() => {
      count = parseXml(many).children.length;
    });
    expect(count).toBe(60_000);
    expect(ms).toBeLessThan(1000);
  });
});

describe("parseXml() refuses", () => {
  test("a billion-laughs document at its DOCTYPE, quickly", () => {
    const lol = [
      '<?xml version="1.0"?>',
      "<!DOCTYPE lolz [",
      ' <!ENTITY lol "lol">',
      ...Array.from({ length: 9 }, (_, i) => ` <!ENTITY lol${i + 1} "${`&lol${i || ""};`.repeat(10)}">`),
      "]>",
      "<lolz>&lol9;</lolz>",
    ].join("\n");
    let error: XmlSyntaxError | undefined;
    const ms = timed(() => {
      error = refusal(lol);
    });
    expect(error!.message).toBe(
      "DOCTYPE declarations are not allowed (no DTD, no entities) at line 2, column 1",
    );
    expect(ms).toBeLessThan(50);
  });

  test("an external entity (XXE) document", () => {
    const xxe = `<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<r>&xxe;</r>`;
    const e = refusal(xxe);
    expect(e.message).toStartWith("DOCTYPE declarations are not allowed");
    expect([e.line, e.column]).toEqual([2, 1]);
  });

  test("an entity reference without a DTD, naming it", () => {
    expect(refusal("<r>\n  &xxe;</r>").message).toBe(
      "Undefined entity &xxe; (only &lt; &gt; &amp; &quot; &apos; and character references are allowed) at line 2, column 3",
    );
  });

  test("a markup declaration inside the document", () => {
    expect(refusal('<r><!ENTITY x "y"></r>').message).toBe(
      "Markup declarations are not allowed at line 1, column 4",
    );
  });

  test("a document over the size cap, before parsing it", () => {
    const big = `<a>${"x".repeat(2 * 1024 * 1024)}</a>`;
    let error: XmlSyntaxError | undefined;
    const ms = timed(() => {
      error = refusal(big);
    });
    expect(error!.message).toBe("XML document is larger than the limit of 1048576 bytes");
    expect(ms).toBeLessThan(50);
    expect(refusal(new Uint8Array(101), { maxBytes: 100 }).message).toContain("limit of 100 bytes");
  });

  test("counts the cap in UTF-8 bytes, not characters", () => {
    expect(parseXml("<a>é</a>", { maxBytes: 10 }).text).toBe("é"); // 9 bytes
    expect(refusal("<a>éé</a>", { maxBytes: 10 }).message).toContain("limit of 10 bytes"); // 9 characters, 11 bytes
  });

  test("a document nested deeper than the cap, quickly", () => {
    const deep = `${"<a>".repeat(100_000)}${"</a>".repeat(100_000)}`;
    let error: XmlSyntaxError | undefined;
    const ms = timed(() => {
      error = refusal(deep);
    });
    expect(error!.message).toBe("Elements are nested deeper than 32 levels at line 1, column 97");
    expect(ms).toBeLessThan(50);
    expect(refusal("<a><a><a/></a></a>", { maxDepth: 2 }).message).toContain("deeper than 2 levels");
  });

  test("a closing tag that does not match, saying which is open", () => {
    expect(refusal("<a>\n  <b>\n  </a>").message).toBe(
      "Unexpected closing tag </a>: <b> opened at line 2, column 3 is still open at line 3, column 3",
    );
  });

  test("an unclosed element at the end", () => {
    expect(refusal("<a><b></b>").message).toBe(
      "Unexpected end of document: <a> opened at line 1, column 1 is not closed at line 1, column 11",
    );
  });

  test("a closing tag with nothing open, a second root and text outside the root", () => {
    expect(refusal("</a>").message).toContain("Unexpected closing tag </a> with no open element");
    expect(refusal("<a/><b/>").message).toBe("A second root element at line 1, column 5");
    expect(refusal("<a/>x").message).toBe("Text after the root element at line 1, column 5");
    expect(refusal("x<a/>").message).toBe("Text before the root element at line 1, column 1");
    expect(refusal("").message).toContain("no root element");
  });

  test("undeclared prefixes and duplicate attributes", () => {
    expect(refusal("<p:a/>").message).toBe("Namespace prefix p is not declared at line 1, column 1");
    expect(refusal('<a x="1" x="2"/>').message).toBe("Attribute x appears twice at line 1, column 10");
    expect(refusal('<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>').message).toContain(
      "Attribute {u}x appears twice",
    );
  });

  test("malformed markup with its position", () => {
    expect(refusal("<a b=c/>").message).toBe("The value of attribute b is not quoted at line 1, column 6");
    expect(refusal('<a b="<"/>').message).toBe('"<" in the value of attribute b at line 1, column 7');
    expect(refusal("<a>&amp</a>").message).toContain('"&" must start an entity');
    expect(refusal("<a>&#0;</a>").message).toContain("&#0; is not a valid character reference");
    expect(refusal("<a><![CDATA[x</a>").message).toContain("Unterminated CDATA section");
    expect(refusal("<a>\u0001</a>").message).toBe(
      "Character U+0001 is not allowed in XML at line 1, column 4",
    );
    expect(refusal('<a/><?xml version="1.0"?>').message).toContain("only allowed at the start");
  });

  test("invalid UTF-8 and unsupported encodings", () => {
    expect(refusal(new Uint8Array([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e])).message).toBe(
      "XML document is not valid UTF-8",
    );
    expect(
      refusal(new TextEncoder().encode('<?xml version="1.0" encoding="EBCDIC"?><a/>')).message,
    ).toContain('encoding "ebcdic"');
  });
});
