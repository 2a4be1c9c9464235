/**
 * The SMTP intake: isched as the relay of a calendar server's outgoing iMIP mail. Remote
 * recipients with an iSchedule receiver go by iSchedule, everything else goes on unchanged to the
 * smarthost, and nothing is relayed for anyone outside the hosted domains.
 */
export { loadAuthFile, parseAuthFile, type SmtpAccounts } from "./auth-file.ts";
export {
  authorize,
  checkEnvelopeSender,
  type DecideInput,
  type Decision,
  decide,
  mailDomain,
  type SmtpEnvelope,
  schedulingCandidates,
} from "./decide.ts";
export { extractImip, type ImipExtraction } from "./imip-extract.ts";
export {
  createRetryMemory,
  type RetryMemory,
  type RetryMemoryOptions,
  transactionKey,
} from "./retry-memory.ts";
export { type SmtpIntake, type SmtpIntakeOptions, startSmtpIntake } from "./server.ts";
export {
  handleTransaction,
  type ScheduleFacts,
  type SmtpReply,
  type Transaction,
  type TransactionContext,
} from "./transaction.ts";
