import { expect, test } from "bun:test";
import { colonList, parseTagList, stripWhitespace } from "../../src/dkim/tag-list.ts";

const ok = (text: string) => {
  const r = parseTagList(text);
  if (!r.ok) throw new Error(r.error);
  return Object.fromEntries(r.tags);
};
const error = (text: string) => {
  const r = parseTagList(text);
  if (r.ok) throw new Error(`expected an error for ${JSON.stringify(text)}`);
  return r.error;
};

test("parseTagList() reads tags with whitespace and folding around names, '=' and values", () => {
  expect(ok(" v = 1 ;a=rsa-sha256;\r\n\td=example.com ; ")).toEqual({
    v: "1",
    a: "rsa-sha256",
    d: "example.com",
  });
});

test("parseTagList() keeps inner whitespace of a value for the caller to strip", () => {
  const tags = ok("b=abc def\r\n ghi; p=");
  expect(tags.b).toBe("abc def\r\n ghi");
  expect(stripWhitespace(tags.b!)).toBe("abcdefghi");
  expect(tags.p).toBe("");
});

test("parseTagList() allows one trailing ';' but refuses an empty tag between two", () => {
  expect(ok("a=1;")).toEqual({ a: "1" });
  expect(error("a=1;;b=2")).toContain("empty tag");
});

test("parseTagList() refuses a duplicate tag, naming it", () => {
  expect(error("v=1; d=a.com; d=b.com")).toBe("tag d= appears twice");
});

test("parseTagList() keeps unknown tags so callers can ignore them", () => {
  expect(ok("v=1; zz=whatever; http=UE9TVDov")).toEqual({ v: "1", zz: "whatever", http: "UE9TVDov" });
});

test("parseTagList() refuses a bad tag name, a missing '=', a bare line break and non-ASCII", () => {
  expect(error("1v=1")).toContain("not a valid tag name");
  expect(error("v=1; nonsense")).toContain("is not tag=value");
  expect(error("a=b\r\nc")).toContain("not allowed");
  expect(error("a=caf\u00e9")).toContain("not allowed");
});

test("parseTagList() is case-sensitive on names", () => {
  expect(ok("V=1; v=2")).toEqual({ V: "1", v: "2" });
});

test("colonList() trims whitespace and folds around items", () => {
  expect(colonList("Originator : Recipient:\r\n Content-Type")).toEqual([
    "Originator",
    "Recipient",
    "Content-Type",
  ]);
});
