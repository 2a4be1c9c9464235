/**
 * The DKIM verify path piece by piece: CPU microseconds per operation of each step verifyRequest()
 * takes, beside the whole engine and the bare primitive, on dkim.ts's 2 KB iSchedule request.
 *
 *   npx bun scripts/bench/profile-dkim.ts [--ms 300] [--rounds 5] [--sign]
 *
 * Each piece runs in a loop for --ms of this thread's CPU time (clock_gettime with
 * CLOCK_THREAD_CPUTIME_ID, so time the core spent on other processes does not count), in --rounds
 * rounds with the pieces interleaved; the table gives the median round. The pieces are the exported functions verify.ts calls, with the
 * arguments it would pass them; "engine - pieces" is what the whole costs beyond its pieces measured
 * alone (the promise, the verdict object, and garbage collection of everything allocated).
 * --sign adds the same table for signRequest().
 */
import { createHash, sign, verify } from "node:crypto";
import { parseArgs } from "node:util";
import {
  canonicalBody,
  type HeaderField,
  headerHashInput,
  indexHeaders,
  withoutSignatureData,
} from "../../src/dkim/canonicalize.ts";
import { hashChunksBase64, signHeaderInput, verifyHeaderInput } from "../../src/dkim/crypto.ts";
import { checkKeyForSignature } from "../../src/dkim/key-record.ts";
import { DEFAULT_QUERY_METHODS, signRequest } from "../../src/dkim/sign.ts";
import { formatSignatureWithoutData, parseSignature } from "../../src/dkim/signature.ts";
import { scanTagList } from "../../src/dkim/tag-list.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import { threadCpuClockUs } from "./_instrument.ts";
import { BODY, benchKeys, FIELDS, NOW, SIGNED_HEADERS } from "./dkim.ts";

const { values: args } = parseArgs({
  options: {
    ms: { type: "string", default: "300" },
    rounds: { type: "string", default: "5" },
    sign: { type: "boolean", default: false },
  },
});
const MS = Number(args.ms);
const ROUNDS = Number(args.rounds);

/** This thread's CPU time, µs (other processes' time on the core left out). */
const cpuUs = threadCpuClockUs();

/** µs of CPU per call, running fn for about MS ms of CPU. */
async function perOp(fn: () => unknown): Promise<number> {
  const isAsync = fn() instanceof Promise;
  for (let i = 0; i < 200; i++) await fn();
  let n = 0;
  const start = cpuUs();
  const budget = MS * 1000;
  while (cpuUs() - start < budget) {
    if (isAsync) for (let i = 0; i < 50; i++) await fn();
    else for (let i = 0; i < 50; i++) fn();
    n += 50;
  }
  return (cpuUs() - start) / n;
}

async function profile(type: "rsa" | "ed25519"): Promise<void> {
  const { key: signing, publicKey, resolver } = benchKeys(type);
  const raw = signRequest({ key: signing, fields: FIELDS, body: BODY, nowMs: NOW });
  const signed: HeaderField[] = [["DKIM-Signature", raw], ...FIELDS];
  const parsed = parseSignature(raw);
  if (!parsed.ok) throw new Error(parsed.message);
  const sig = parsed.signature;
  const index = indexHeaders(signed);
  const input = headerHashInput({
    index,
    signedHeaders: sig.signedHeaders,
    canonicalization: sig.headerCanonicalization,
    signatureWithoutData: withoutSignatureData(raw),
  });
  const query = { domain: sig.domain, selector: sig.selector, methods: sig.queryMethods };
  const lookup = await resolver.lookup(query);
  if (!lookup.ok || !lookup.candidates[0]?.parsed.ok) throw new Error("no key");
  const key = lookup.candidates[0].parsed.key;
  const inputBuffer = Buffer.from(input, "latin1");
  const check = await verifyRequest({ fields: signed, body: BODY }, { keys: resolver, nowMs: NOW });
  if (!check.ok) throw new Error(check.message);

  const pieces: [string, () => unknown][] = [
    ["header index (indexHeaders)", () => indexHeaders(signed)],
    ["DKIM-Signature parse (parseSignature)", () => parseSignature(raw)],
    ["  of which the tag scan (scanTagList)", () => scanTagList(raw)],
    [
      "body hash (canonicalBody + SHA-256 + base64)",
      () => hashChunksBase64(canonicalBody(BODY, "simple"), "sha256"),
    ],
    ["b= removed (withoutSignatureData)", () => withoutSignatureData(raw)],
    [
      "header hash input (headerHashInput)",
      () =>
        headerHashInput({
          index,
          signedHeaders: sig.signedHeaders,
          canonicalization: sig.headerCanonicalization,
          signatureWithoutData: withoutSignatureData(raw),
        }),
    ],
    ["key from the warm cache (KeyResolver.cached)", () => resolver.cached?.(query)],
    ["key checks (checkKeyForSignature)", () => checkKeyForSignature(key, sig.algorithm)],
    ["header input to bytes (Buffer.from latin1)", () => Buffer.from(input, "latin1")],
    [
      "signature check (verifyHeaderInput: bytes, hash, verify)",
      () => verifyHeaderInput(sig.algorithm, key.key, input, sig.signature),
    ],
  ];
  const primitive: () => unknown =
    type === "rsa"
      ? () => verify("sha256", inputBuffer, publicKey, sig.signature)
      : () => verify(null, Bun.SHA256.hash(inputBuffer) as Uint8Array, publicKey, sig.signature);
  const all: [string, () => unknown][] = [
    [
      "engine (await verifyRequest)",
      () => verifyRequest({ fields: signed, body: BODY }, { keys: resolver, nowMs: NOW }),
    ],
    [type === "rsa" ? "primitive (crypto.verify sha256)" : "primitive (SHA-256 + crypto.verify)", primitive],
    ...pieces,
  ];
  await table(`${type === "rsa" ? "rsa-sha256 (2048)" : "ed25519-sha256"} verify`, all, {
    // The two sub-pieces are inside others: not counted again.
    counted: (name) => !name.startsWith("  ") && !name.startsWith("header input to bytes"),
    rest: "engine - pieces (promise, verdict, GC)",
  });
}

/**
 * Runs `all` (the engine first, the primitive second, then the pieces) in ROUNDS interleaved rounds
 * and prints the median of each, with what the engine costs beyond the pieces and the primitive.
 */
async function table(
  title: string,
  all: [string, () => unknown][],
  o: { counted: (name: string) => boolean; rest: string },
): Promise<void> {
  const rounds = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of all) rounds.set(name, [...(rounds.get(name) ?? []), await perOp(fn)]);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const engine = median(rounds.get(all[0]![0])!);
  const prim = median(rounds.get(all[1]![0])!);
  console.log(`\n${title}, ${BODY.length} B body:\n`);
  console.log("| piece | CPU µs/op (median) | range over rounds | share of engine |");
  console.log("|---|---:|---:|---:|");
  for (const [name] of all) {
    const xs = rounds.get(name)!;
    console.log(
      `| ${name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)} | ${((median(xs) / engine) * 100).toFixed(0)}% |`,
    );
  }
  const pieceSum = all
    .slice(2)
    .filter(([n]) => o.counted(n))
    .reduce((a, [n]) => a + median(rounds.get(n)!), 0);
  console.log(
    `| sum of the pieces | ${pieceSum.toFixed(2)} | | ${((pieceSum / engine) * 100).toFixed(0)}% |`,
  );
  console.log(
    `| ${o.rest} | ${(engine - pieceSum).toFixed(2)} | | ${(((engine - pieceSum) / engine) * 100).toFixed(0)}% |`,
  );
  console.log(
    `| engine - primitive (what the engine adds) | ${(engine - prim).toFixed(2)} | | engine / primitive rate: ${((prim / engine) * 100).toFixed(0)}% |`,
  );
}

/** The same for signRequest(): its pieces beside the bare signature over the header hash input. */
async function profileSign(type: "rsa" | "ed25519"): Promise<void> {
  const { key } = benchKeys(type);
  const index = indexHeaders(FIELDS);
  const signedHeaders = SIGNED_HEADERS;
  const fields = {
    algorithm: key.algorithm,
    domain: key.domain,
    selector: key.selector,
    queryMethods: DEFAULT_QUERY_METHODS,
    timestamp: NOW / 1000,
    expiration: NOW / 1000 + 3600,
    signedHeaders,
    bodyHash: hashChunksBase64(canonicalBody(BODY, "simple"), "sha256"),
  };
  const value = formatSignatureWithoutData(fields);
  const input = headerHashInput({
    index,
    signedHeaders,
    canonicalization: "ischedule-relaxed",
    signatureWithoutData: value,
  });
  const inputBuffer = Buffer.from(input, "latin1");
  const signature = signHeaderInput(key.algorithm, key.privateKey, input);
  const all: [string, () => unknown][] = [
    ["engine (signRequest)", () => signRequest({ key, fields: FIELDS, body: BODY, nowMs: NOW })],
    [
      type === "rsa" ? "primitive (crypto.sign sha256)" : "primitive (SHA-256 + crypto.sign)",
      type === "rsa"
        ? () => sign("sha256", inputBuffer, key.privateKey)
        : () => sign(null, createHash("sha256").update(inputBuffer).digest(), key.privateKey),
    ],
    ["header index (indexHeaders)", () => indexHeaders(FIELDS)],
    [
      "body hash (canonicalBody + SHA-256 + base64)",
      () => hashChunksBase64(canonicalBody(BODY, "simple"), "sha256"),
    ],
    ["tags without b= (formatSignatureWithoutData)", () => formatSignatureWithoutData(fields)],
    [
      "header hash input (headerHashInput)",
      () =>
        headerHashInput({
          index,
          signedHeaders,
          canonicalization: "ischedule-relaxed",
          signatureWithoutData: value,
        }),
    ],
    [
      "signature (signHeaderInput: bytes, hash, sign)",
      () => signHeaderInput(key.algorithm, key.privateKey, input),
    ],
    ["b= to base64", () => signature.toString("base64")],
  ];
  await table(`${type === "rsa" ? "rsa-sha256 (2048)" : "ed25519-sha256"} sign`, all, {
    counted: () => true,
    rest: "engine - pieces (header list checks, the value's concatenation, GC)",
  });
}

console.log(`Bun ${Bun.version}; ${navigator.hardwareConcurrency} cores; --ms ${MS} --rounds ${ROUNDS}`);
await profile("rsa");
await profile("ed25519");
if (args.sign) {
  await profileSign("rsa");
  await profileSign("ed25519");
}
