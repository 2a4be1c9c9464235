/**
 * Certificates by ACME (RFC 8555) for the endpoint: the parts a server wires together. See
 * docs/acme.md for how they fit.
 */
export {
  type AcmeClient,
  AcmeError,
  type ChallengeSolver,
  createAcmeClient,
  LETS_ENCRYPT_DIRECTORY,
} from "./client.ts";
export { readClientHello } from "./client-hello.ts";
export { type HotTlsListener, startHotTlsListener } from "./hot-tls-listener.ts";
export { createHttpChallenges, type HttpChallenges } from "./http-challenges.ts";
export { type AcmeHttpListener, startAcmeHttpListener } from "./http-listener.ts";
export { httpSolver } from "./http-solver.ts";
export {
  type CertificateManager,
  type CertificateStatus,
  createCertificateManager,
} from "./manager.ts";
export { nearExpiry, renewalDueAt, retryAt } from "./schedule.ts";
export { type AcmeStore, openAcmeStore, type StoredCertificate } from "./store.ts";
export { type AlpnResponder, startAlpnResponder, tlsAlpnSolver } from "./tls-alpn.ts";
export { startTlsFront, type TlsFront } from "./tls-front.ts";
