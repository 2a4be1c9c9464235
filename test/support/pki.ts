/**
 * A throwaway PKI for tests that need real TLS: a CA and server certificates made with the `openssl`
 * CLI in a temporary directory, so the certificates are ordinary X.509 that any TLS stack accepts.
 * EC P-256 keys keep it fast (a CA plus a certificate take a few tens of milliseconds).
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { isIpAddress } from "../../src/net/address-policy.ts";

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export interface TestCa {
  caCertPem: string;
  caCertFile: string;
  /** The directory holding every file of this CA. */
  dir: string;
  /** A server certificate for `names`: host names become DNS SANs, IP addresses IP SANs. */
  issue(names: readonly string[], o?: { validDays?: number }): IssuedCert;
  /** Deletes the directory when createTestCa made it (a caller's own `dir` is left alone). */
  remove(): void;
}

const VALID_DAYS = "3";
const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-sha256"];

function openssl(args: readonly string[], cwd: string): void {
  const run = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed: ${run.stderr.toString().trim()}`);
  }
}

/** Makes a new CA in `dir` (a fresh temporary directory by default). Nothing is cached. */
export function createTestCa(dir?: string, commonName = "isched test CA"): TestCa {
  const root = dir ?? mkdtempSync(join(tmpdir(), "isched-pki-"));
  const caCertFile = join(root, "ca.pem");
  const caKeyFile = join(root, "ca.key");
  openssl(
    [
      "req",
      "-x509",
      ...KEY_ARGS,
      "-keyout",
      caKeyFile,
      "-out",
      caCertFile,
      "-days",
      VALID_DAYS,
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    root,
  );
  let serial = 0;
  return {
    remove() {
      if (dir === undefined) rmSync(root, { recursive: true, force: true });
    },
    caCertPem: readFileSync(caCertFile, "utf8"),
    caCertFile,
    dir: root,
    issue(names, o) {
      if (names.length === 0) throw new Error("issue() needs at least one name");
      serial += 1;
      const certFile = join(root, `server-${serial}.pem`);
      const keyFile = join(root, `server-${serial}.key`);
      const san = names.map((n) => (isIpAddress(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
      // `req -x509 -CA` (OpenSSL 3) makes the key and signs the certificate in one process.
      openssl(
        [
          "req",
          "-x509",
          ...KEY_ARGS,
          "-keyout",
          keyFile,
          "-out",
          certFile,
          "-days",
          String(o?.validDays ?? VALID_DAYS),
          "-subj",
          `/CN=${names[0]}`,
          "-CA",
          caCertFile,
          "-CAkey",
          caKeyFile,
          "-addext",
          "basicConstraints=critical,CA:FALSE",
          "-addext",
          "keyUsage=critical,digitalSignature",
          "-addext",
          "extendedKeyUsage=serverAuth",
          "-addext",
          `subjectAltName=${san}`,
        ],
        root,
      );
      return {
        certPem: readFileSync(certFile, "utf8"),
        keyPem: readFileSync(keyFile, "utf8"),
        certFile,
        keyFile,
      };
    },
  };
}

/** The serial number of the certificate a TLS server on 127.0.0.1:PORT presents for `serverName`. */
export function peerSerial(port: number, ca: string, serverName = "localhost"): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, ca, servername: serverName }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on("error", reject);
  });
}
