/**
 * What ACME leaves in the data folder, in `DATA/acme/` (mode 0700):
 * - `account-key.pem`: the ACME account's private key (ECDSA P-256, PKCS#8), made on first use. The
 *   CA finds the account again from this key alone (RFC 8555 §7.3.1), so no account URL is kept.
 * - `certificate.pem`: the private key of the current certificate, then the certificate and its chain,
 *   in one file replaced atomically (write, fsync, rename), so a crash never leaves a key beside a
 *   certificate it does not belong to.
 * Both files are mode 0600: they are secrets.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

export interface IssuedCertificate {
  /** The leaf certificate followed by its chain, PEM. */
  chainPem: string;
  keyPem: string;
}

export interface StoredCertificate extends IssuedCertificate {
  /** DNS names of the leaf's subjectAltName, lower-case, in the certificate's order. */
  names: string[];
  notBeforeMs: number;
  notAfterMs: number;
}

export interface AcmeStore {
  readonly dir: string;
  /** The account key, made and saved on first call. */
  accountKey(): string;
  /** The saved certificate; undefined when there is none. Throws when the file is damaged. */
  loadCertificate(): StoredCertificate | undefined;
  saveCertificate(c: IssuedCertificate): StoredCertificate;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

export function openAcmeStore(dataDir: string): AcmeStore {
  const dir = join(dataDir, "acme");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const accountFile = join(dir, "account-key.pem");
  const certificateFile = join(dir, "certificate.pem");
  return {
    dir,
    accountKey() {
      if (existsSync(accountFile)) return readFileSync(accountFile, "utf8");
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      writeAtomically(accountFile, pem);
      return pem;
    },
    loadCertificate() {
      if (!existsSync(certificateFile)) return undefined;
      return readCertificateFile(certificateFile);
    },
    saveCertificate(c) {
      const stored = describeCertificate(c, "the new certificate");
      writeAtomically(certificateFile, `${c.keyPem.trim()}\n${c.chainPem.trim()}\n`);
      return stored;
    },
  };
}

/** A saved certificate file (key and chain in one), checked; throws when it is damaged. */
export function readCertificateFile(file: string): StoredCertificate {
  const text = readFileSync(file, "utf8");
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const key = blocks.find((b) => b[1]!.endsWith("PRIVATE KEY"))?.[0];
  const chain = blocks.filter((b) => b[1] === "CERTIFICATE").map((b) => b[0]);
  if (key === undefined || chain.length === 0) {
    throw new Error(`${file} is damaged: it needs a private key and a certificate`);
  }
  return describeCertificate({ chainPem: `${chain.join("\n")}\n`, keyPem: `${key}\n` }, file);
}

/**
 * The names and validity of a certificate, after checking that the key belongs to the leaf (the
 * first certificate of the chain). `where` names the source in errors.
 */
export function describeCertificate(c: IssuedCertificate, where: string): StoredCertificate {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(c.chainPem);
  } catch (e) {
    throw new Error(`${where}: the certificate cannot be read (${(e as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(c.keyPem));
  } catch (e) {
    throw new Error(`${where}: the private key cannot be read (${(e as Error).message})`);
  }
  if (!matches) throw new Error(`${where}: the private key does not belong to the certificate`);
  return {
    ...c,
    names: dnsNames(leaf.subjectAltName),
    notBeforeMs: Date.parse(leaf.validFrom),
    notAfterMs: Date.parse(leaf.validTo),
  };
}

/** `DNS:a.example, IP Address:1.2.3.4, DNS:b.example` -> the DNS names. */
function dnsNames(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
