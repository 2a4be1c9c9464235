/**
 * Endpoint cases: the DKIM-Signature broken one tag at a time (verified in the order of RFC 6376
 * §6.1.1), every tag dropped, emptied, garbled, repeated and made huge; signatures by keys that the
 * peer's DNS publishes wrong in one way each (_world.ts KEY_RECORDS); and signatures that are valid
 * in unusual ways (Ed25519, a testing key, FWS inside b=), which must be accepted.
 */
import type { Case } from "./_cases.ts";
import {
  BERNARD,
  BOTH_DELIVERED,
  type Build,
  calendar,
  type EndpointTarget,
  type Expected,
  endpointCase,
  invitation,
  refused,
  send,
  uid,
  VF,
  validFields,
  veventLines,
} from "./_endpoint-request.ts";
import { peerKeys } from "./_world.ts";

const setTag = (sig: string, tag: string, value: string) =>
  sig.replace(new RegExp(`(^|; )${tag}=[^;]*`), `$1${tag}=${value}`);
const dropTag = (sig: string, tag: string) => sig.replace(new RegExp(`(^|; )${tag}=[^;]*(; )?`), "$1");
const tagValue = (sig: string, tag: string) => new RegExp(`(?:^|; )${tag}=([^;]*)`).exec(sig)![1]!;

const DKIM_CASES: [string, Expected, Build][] = [
  ["a tag given twice (d=)", VF(/tag d= appears twice/), { signature: (s) => `${s}; d=peer.test` }],
  ["an empty b=", VF(/does not match|empty|b=/), { signature: (s) => setTag(s, "b", "") }],
  ["b= that is not base64", VF(/b=|base64/), { signature: (s) => setTag(s, "b", "!!not*base64!!") }],
  ["bh= that is not base64", VF(/bh=|base64/), { signature: (s) => setTag(s, "bh", "%%%") }],
  [
    "bh= of another body",
    VF(/body hash does not match/),
    { signature: (s) => setTag(s, "bh", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") },
  ],
  [
    "h= without Recipient",
    VF(/Recipient/),
    { signature: (s) => setTag(s, "h", tagValue(s, "h").replace(/(^|:)Recipient(?=:|$)/, "")) },
  ],
  [
    "h= naming Content-Length, which must not be signed",
    VF(/Content-Length|must not be signed/i),
    { signature: (s) => setTag(s, "h", `${tagValue(s, "h")}:Content-Length`) },
  ],
  [
    "h= naming Originator twice",
    VF(/twice|Originator/i),
    { signature: (s) => setTag(s, "h", `${tagValue(s, "h")}:Originator`) },
  ],
  [
    "h= naming a field the request does not have",
    VF(/does not match|X-Absent/),
    { signature: (s) => setTag(s, "h", `${tagValue(s, "h")}:X-Absent`) },
  ],
  [
    "h= with an empty name between colons",
    VF(/h=/),
    { signature: (s) => setTag(s, "h", tagValue(s, "h").replace(":", "::")) },
  ],
  [
    "an unknown algorithm (rsa-sha512)",
    VF(/rsa-sha512 is not supported/),
    { signature: (s) => setTag(s, "a", "rsa-sha512") },
  ],
  ["a=rsa-sha1 (RFC 8301)", VF(/rsa-sha1 is refused/), { signature: (s) => setTag(s, "a", "rsa-sha1") }],
  [
    "a=ed25519-sha256 on an RSA signature",
    VF(/a=ed25519-sha256 needs an ed25519 key but the record has k=rsa/),
    { signature: (s) => setTag(s, "a", "ed25519-sha256") },
  ],
  // ABNF literals are case-insensitive (RFC 5234 §2.3): RSA-SHA256 is rsa-sha256, but the signed
  // DKIM-Signature field is no longer what was signed.
  ["a= in upper case", VF(/signature does not match/), { signature: (s) => setTag(s, "a", "RSA-SHA256") }],
  ["v=2", VF(/v=2 is not supported/), { signature: (s) => setTag(s, "v", "2") }],
  ["v=1.0", VF(/v=/), { signature: (s) => setTag(s, "v", "1.0") }],
  [
    "c=simple/simple",
    VF(/c=simple\/simple is not supported/),
    { signature: (s) => setTag(s, "c", "simple/simple") },
  ],
  [
    "c=relaxed/relaxed (e-mail's canonicalization)",
    VF(/signature does not match/),
    { signature: (s) => setTag(s, "c", "relaxed/relaxed") },
  ],
  ["only q=dns/axfr", VF(/q=|query/), { signature: (s) => setTag(s, "q", "dns/axfr") }],
  [
    "d= that is not a domain name",
    VF(/d=peer\.\.test is not a domain name/),
    { signature: (s) => setTag(s, "d", "peer..test") },
  ],
  [
    "d= of another domain than the key's",
    VF(/No key record for selector s1 of other\.test/),
    { signature: (s) => setTag(s, "d", "other.test") },
  ],
  [
    "d= with a trailing dot",
    VF(/signature does not match/),
    { signature: (s) => setTag(s, "d", "peer.test.") },
  ],
  ["s= with a slash", VF(/s=|selector/), { signature: (s) => setTag(s, "s", "s1/../x") }],
  ["s= of 300 characters", VF(), { signature: (s) => setTag(s, "s", "s".repeat(300)) }],
  ["t= an hour in the future", VF(/in the future/), { nowMs: Date.now() + 3600_000 }],
  ["x= two hours ago (expired)", VF(/expired/), { nowMs: Date.now() - 3 * 3600_000 }],
  [
    "x= before t=",
    VF(/x=|expired/),
    { signature: (s) => setTag(s, "x", String(Number(tagValue(s, "t")) - 10)) },
  ],
  ["t= with letters", VF(/t=/), { signature: (s) => setTag(s, "t", "12ab") }],
  ["t= of 40 digits", VF(/t=/), { signature: (s) => setTag(s, "t", "9".repeat(40)) }],
  ["x= of 40 digits", VF(/x=|expire|does not match/), { signature: (s) => setTag(s, "x", "9".repeat(40)) }],
  ["t= negative", VF(/t=/), { signature: (s) => setTag(s, "t", "-5") }],
  [
    "l= shorter than the body",
    VF(/l=10 does not cover the whole body/),
    { signature: (s) => s.replace("; bh=", "; l=10; bh=") },
  ],
  ["l= that is not a number", VF(/l=/), { signature: (s) => s.replace("; bh=", "; l=ten; bh=") }],
  [
    "i= in another domain than d=",
    VF(/i=/),
    { signature: (s) => s.replace("; bh=", "; i=@other.test; bh=") },
  ],
  [
    "z= copied header fields (ignored, but signed)",
    VF(/does not match/),
    { signature: (s) => s.replace("; bh=", "; z=From:x; bh=") },
  ],
  [
    "an unknown tag added after signing",
    VF(/does not match/),
    { signature: (s) => s.replace("; bh=", "; zz=1; bh=") },
  ],
  [
    "a value that is not a tag list",
    VF(/not a valid tag list/),
    { signature: () => "this is not a signature" },
  ],
  ["a tag list of 2,000 empty tags", VF(/tag list/), { signature: (s) => `${";".repeat(2000)}${s}` }],
  [
    "a selector with no key record",
    VF(/No key record for selector nokey of peer\.test/),
    { key: peerKeys.rsaAs("nokey") },
  ],
  [
    "d=peer.test for an Originator at other.test",
    refused(403, "originator-denied", /signed by peer\.test/),
    { originator: "mailto:bernard@other.test" },
  ],
  // The peer's DNS publishes the key wrong in one way each (_world.ts KEY_RECORDS).
  ["a revoked key (p= empty)", VF(/revoked/), { key: peerKeys.rsaAs("revoked") }],
  ["a key for e-mail only (s=email)", VF(/s=email/), { key: peerKeys.rsaAs("email") }],
  ["a key that allows only h=sha1", VF(/h=sha1/), { key: peerKeys.rsaAs("sha1only") }],
  ["a key record saying k=ed25519 over an RSA key", VF(/k=ed25519/), { key: peerKeys.rsaAs("kmismatch") }],
  ["a key record holding an Ed25519 key as k=rsa", VF(/k=rsa|RSA/), { key: peerKeys.rsaAs("edasrsa") }],
  ["a key record whose p= is not base64", VF(/base64/), { key: peerKeys.rsaAs("notbase64") }],
  ["a key record whose p= is not a key", VF(/valid RSA public key/), { key: peerKeys.rsaAs("notakey") }],
  ["a key record with v=DKIM2", VF(/v=DKIM2/), { key: peerKeys.rsaAs("v2") }],
  ["a key record with k=dsa", VF(/k=dsa/), { key: peerKeys.rsaAs("unknownk") }],
  ["a key record without p=", VF(/no p= tag/), { key: peerKeys.rsaAs("nop") }],
  ["a key record that is prose", VF(/not a tag list/), { key: peerKeys.rsaAs("prose") }],
  // RFC 6376 §3.6.2.2: a verifier may try each record of the set; the first one is the right key.
  [
    "two key records at the selector, one of them right",
    BOTH_DELIVERED,
    { key: peerKeys.rsaAs("tworecords") },
  ],
  [
    "another key published at the selector",
    VF(/signature does not match/),
    { key: peerKeys.rsaAs("otherkey") },
  ],
  ["a 512-bit RSA key (RFC 8301)", VF(/512 bits/), { key: peerKeys.weak }],
  // Valid in unusual ways: accepted.
  ["an Ed25519 key (RFC 8463)", BOTH_DELIVERED, { key: peerKeys.ed25519 }],
  ["a key marked t=y (testing)", BOTH_DELIVERED, { key: peerKeys.rsaAs("testing") }],
  ["no x= (good for --max-signature-age)", BOTH_DELIVERED, { sign: { expireSeconds: 0 } }],
  ["q=private-exchange only (no such key here)", VF(/key/), { sign: { queryMethods: ["private-exchange"] } }],
  // Relaxed canonicalization keeps one space where there were several, so the signed field changed.
  [
    "spaces added around = and ;",
    VF(/signature does not match/),
    { signature: (s) => s.replace(/; /g, " ;  ").replace(/=/, " = ") },
  ],
  [
    "b= folded with spaces every 20 characters",
    BOTH_DELIVERED,
    { signature: (s) => setTag(s, "b", tagValue(s, "b").replace(/(.{20})/g, "$1 ")) },
  ],
];

export function dkimCases(target: () => EndpointTarget): Case[] {
  const cases: Case[] = [];
  const add = (name: string, expected: Expected, run: (t: EndpointTarget) => ReturnType<typeof send>) =>
    cases.push(endpointCase(target, name, expected, run));

  for (const what of ["v", "a", "c", "d", "s", "t", "x", "h", "bh", "b", "q"]) {
    const expected =
      what === "x" || what === "q" || what === "c"
        ? // Optional (RFC 6376 §3.5) with defaults isched accepts, but the signature covered them.
          VF(/does not match|c=|q=/)
        : VF(new RegExp(`no ${what}= tag|${what}=|does not match`));
    cases.push(
      endpointCase(target, `DKIM-Signature without ${what}=`, expected, (t) => {
        const body = invitation();
        return send(t, validFields({ body, signature: (s) => dropTag(s, what) }), body);
      }),
    );
    cases.push(
      endpointCase(target, `DKIM-Signature with ${what}= of 4 KB`, VF(), (t) => {
        const body = invitation();
        return send(t, validFields({ body, signature: (s) => setTag(s, what, "A".repeat(4096)) }), body);
      }),
    );
    cases.push(
      endpointCase(
        target,
        `DKIM-Signature with ${what}= holding a non-ASCII byte`,
        VF(new RegExp(`tag ${what}= has a character not allowed in a value`)),
        (t) => {
          const body = invitation();
          return send(
            t,
            validFields({ body, signature: (s) => setTag(s, what, `${tagValue(s, what)}\xe9`) }),
            body,
          );
        },
      ),
    );
  }

  for (const [what, expected, build] of DKIM_CASES) {
    add(`DKIM-Signature with ${what}`, expected, (t) => {
      const organizer = build.originator ?? BERNARD;
      const body = calendar(veventLines(uid())).replace(BERNARD, organizer);
      return send(t, validFields({ ...build, body }), body);
    });
  }

  add("two DKIM-Signature header lines, both valid", VF(/tag list|more than one/), (t) => {
    const body = invitation();
    const fields = validFields({ body });
    const second = validFields({ body }).find(([n]) => n === "DKIM-Signature")!;
    return send(t, [...fields.slice(0, 2), second, ...fields.slice(2)], body);
  });
  add("a signature of another request's body and fields", VF(/body hash does not match/), (t) => {
    const signature = validFields().find(([n]) => n === "DKIM-Signature")![1];
    const body = invitation();
    return send(t, validFields({ body, signature: () => signature }), body);
  });
  return cases;
}
