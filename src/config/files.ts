/**
 * Reading the files named on the command line: secrets (--webhook-secret-file, --api-token-file, ...)
 * and the PEM files (--tls-cert, --tls-key, --ca-file, --dkim-key), at
 * start-up, before anything is written: each mistake is a ConfigError naming the flag and the file and
 * saying what the file holds instead (`--tls-cert /x/pub.pem: not a PEM certificate (it holds a
 * PUBLIC KEY)`), never an OpenSSL error code. PEM labels: RFC 7468 §2.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.ts";

/** A secret file's text, trimmed (a token, a password); a ConfigError when unreadable or empty. */
export function readSecretFile(flag: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new ConfigError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (text === "") throw new ConfigError(`${flag}: ${path} is empty`);
  return text;
}

/** The file's text; a ConfigError when it cannot be read. */
export function readFlagFile(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

/** The labels of the PEM blocks in `text`, in order (`CERTIFICATE`, `PRIVATE KEY`, ...). */
export function pemLabels(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]!);
}

function holds(text: string): string {
  const labels = [...new Set(pemLabels(text))];
  return labels.length === 0 ? "it holds no PEM block" : `it holds ${labels.map(article).join(" and ")}`;
}

const article = (label: string) => `${/^[AEIOU]/.test(label) ? "an" : "a"} ${label}`;

/** One or more certificates (a chain, or CA certificates); the first is the leaf of a chain. */
export function readCertificates(flag: string, path: string): { pem: string; first: X509Certificate } {
  const pem = readFlagFile(flag, path);
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${flag} ${path}: not a PEM certificate (${holds(pem)})`);
  const parsed = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new ConfigError(`${flag} ${path}: certificate ${i + 1} in it is not valid X.509`);
    }
  });
  return { pem, first: parsed[0]! };
}

/** An unencrypted private key. */
export function readPrivateKey(flag: string, path: string): { pem: string; key: KeyObject } {
  const pem = readFlagFile(flag, path);
  const labels = pemLabels(pem);
  if (labels.includes("ENCRYPTED PRIVATE KEY") || /Proc-Type: 4,ENCRYPTED/.test(pem))
    throw new ConfigError(`${flag} ${path}: the private key is encrypted; isched needs it unencrypted`);
  if (!labels.some((l) => l.endsWith("PRIVATE KEY")))
    throw new ConfigError(`${flag} ${path}: not a PEM private key (${holds(pem)})`);
  try {
    return { pem, key: createPrivateKey({ key: pem, format: "pem" }) };
  } catch {
    throw new ConfigError(`${flag} ${path}: the private key in it cannot be read`);
  }
}

/** --tls-cert and --tls-key: a certificate chain and the private key of its first certificate. */
export function readTlsPair(certFile: string, keyFile: string): { cert: string; key: string } {
  const cert = readCertificates("--tls-cert", certFile);
  const key = readPrivateKey("--tls-key", keyFile);
  if (!cert.first.checkPrivateKey(key.key))
    throw new ConfigError(
      `--tls-key ${keyFile}: not the private key of the certificate in --tls-cert ${certFile}`,
    );
  return { cert: cert.pem, key: key.pem };
}
