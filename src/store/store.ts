/**
 * The store: everything isched keeps in its database, behind one interface, so that the queue, the
 * intakes, the console and the key rotation never see SQL or a connection. src/store/sqlite
 * implements it (createSqliteStore), and src/store/postgres (openPostgresStore, `serve --database`);
 * test/store/contract runs the same cases on both (docs/store-interface.md).
 *
 * Every method is one whole operation: one statement, or one transaction that the implementation
 * opens and commits itself, never a transaction held open across an await. Every method is async,
 * because a network database answers later; over SQLite each body is a synchronous transaction
 * inside an async function (nothing awaited between BEGIN and COMMIT), which costs one promise per
 * call (BENCHMARKS.md, "Async store over SQLite").
 *
 * Policy stays with the callers: the clock (`nowMs` in every writing method), lease lengths, retry
 * times, and for lease recovery a synchronous per-row decision (`plan`) the store calls inside its
 * transaction. The row types are defined beside the statements that read them and re-exported
 * here, so a caller imports them from this file alone.
 */

import type { ItipKeyClaims, ReplayClaim } from "./errors.ts";
import type { BulkAction, FilterTerm, MessageFilter, ValueKey } from "./message-filter.ts";
import type { RefusalLimits } from "./refusal-limits.ts";
import type { AttemptOutcome, AttemptRow, NewAttempt } from "./sqlite/attempts.ts";
import type { SessionRow } from "./sqlite/console-sessions.ts";
import type {
  ChangeCursor,
  InboundPeerStats,
  LastAttempt,
  OutboundPeerStats,
  OutcomeBucket,
  RecentFailure,
  SelectorSeen,
} from "./sqlite/console-stats.ts";
import type {
  DeliveryRow,
  DeliveryState,
  DueRow,
  FinalDeliveryState,
  HeldInFlight,
  InFlight,
  LeasedDelivery,
  LeaseTerms,
  OperatorAction,
  Route,
} from "./sqlite/deliveries.ts";
import type { DkimKeyRow, KeyState } from "./sqlite/dkim-keys.ts";
import type { InboxItem } from "./sqlite/inbox.ts";
import type { LogMessageSummary, LogPage } from "./sqlite/message-search.ts";
import type {
  Direction,
  DkimResult,
  HeaderList,
  Intake,
  ItipColumns,
  MessageFacts,
  MessageRow,
  NewMessage,
} from "./sqlite/messages.ts";
import type { PeerFactKind, PeerFactRow, PeerFactSource } from "./sqlite/peer-facts.ts";
import type { PeerPolicyRow, PolicyTrust } from "./sqlite/peer-policies.ts";
import type { QueueFacts } from "./sqlite/queue-facts.ts";
import type { NewRefusal, RefusalRow, RefusalTotals } from "./sqlite/refusals.ts";

export type {
  AttemptOutcome,
  AttemptRow,
  BulkAction,
  ChangeCursor,
  DeliveryRow,
  DeliveryState,
  Direction,
  DkimKeyRow,
  DkimResult,
  DueRow,
  FilterTerm,
  FinalDeliveryState,
  HeaderList,
  HeldInFlight,
  InboundPeerStats,
  InboxItem,
  InFlight,
  Intake,
  ItipColumns,
  ItipKeyClaims,
  KeyState,
  LastAttempt,
  LeasedDelivery,
  LeaseTerms,
  LogMessageSummary,
  LogPage,
  MessageFacts,
  MessageFilter,
  MessageRow,
  NewAttempt,
  NewMessage,
  NewRefusal,
  OperatorAction,
  OutboundPeerStats,
  OutcomeBucket,
  PeerFactKind,
  PeerFactRow,
  PeerFactSource,
  PeerPolicyRow,
  PolicyTrust,
  QueueFacts,
  RecentFailure,
  RefusalLimits,
  RefusalRow,
  RefusalTotals,
  ReplayClaim,
  Route,
  SelectorSeen,
  SessionRow,
  ValueKey,
};

/** A delivery as the store inserts it: every column decided by the caller. */
export interface DeliveryToStore {
  recipient: string;
  domain: string;
  route: Route;
  target: string | null;
  state: "queued" | "delivered" | "failed";
  requestStatus: string | null;
  lastError: string | null;
  /** null unless queued. */
  nextAttemptAt: number | null;
  fallbackAt: number | null;
  /** The attempt that decided a delivered/failed delivery at intake, stored in the same transaction. */
  attempt?: NewAttempt;
}

export interface StoredMessage {
  messageId: number;
  /** In the order of the deliveries given, without those of `copies`. */
  deliveryIds: number[];
  /** Recipients whose copy of this iTIP revision an earlier message holds, to that message's id. */
  copies: ReadonlyMap<string, number>;
}

/** `route`/`target` change where the delivery goes next (iMIP fallback, the peer URL found). */
interface CompletionChange {
  requestStatus?: string;
  error?: string;
  route?: Route;
  target?: string;
}

export type Completion =
  | ({ state: FinalDeliveryState } & CompletionChange)
  | ({ state: "queued"; nextAttemptAt: number } & CompletionChange)
  /**
   * The delivery waited for isched itself (its DKIM key not yet visible in DNS), so nothing was
   * tried: back in the queue with the reason, no attempt recorded or counted.
   */
  | { state: "waiting"; nextAttemptAt: number; error: string };

export interface CompletionItem {
  deliveryId: number;
  attempt: NewAttempt;
  next: Completion;
}

/** What lease recovery does with one abandoned delivery (the queue's policy decides). */
export type LeaseBreak =
  | { state: "broken"; error: string }
  | { state: "queued"; nextAttemptAt: number; error: string };

export interface RecoveryReport {
  /** Back in the queue. */
  requeued: number[];
  /** Moved to 'broken'. */
  broken: number[];
}

export type DeliveryWithAttempts = DeliveryRow & { attemptList: AttemptRow[] };

export interface MessageDetail {
  message: MessageRow;
  deliveries: DeliveryWithAttempts[];
}

export interface Store {
  readonly backend: "sqlite" | "postgres";

  // The queue (src/queue/queue.ts).
  /**
   * Stores a message (its replay key and iTIP keys claimed) and its deliveries in one transaction.
   * Throws ReplayConflictError for a replay key in force, ItipCopyError when every claimed
   * recipient's copy is held by an earlier message (nothing stored then). Resolves only once the
   * message is committed; an implementation may commit accepts that arrive together in one
   * transaction (SQLite does: sqlite/group-commit.ts), each one all or nothing and claiming its keys
   * in arrival order, as if each had its own.
   */
  accept(o: {
    message: NewMessage & { uuid: string; receivedAt: number };
    deliveries: readonly DeliveryToStore[];
    nowMs: number;
  }): Promise<StoredMessage>;
  addDeliveries(o: {
    messageId: number;
    deliveries: readonly DeliveryToStore[];
    nowMs: number;
  }): Promise<number[]>;
  /** Up to `limit` due deliveries (of `routes`, when given), oldest due first. */
  lease(o: LeaseTerms & { limit: number; routes?: readonly string[] }): Promise<LeasedDelivery[]>;
  /**
   * Of the `window` oldest due deliveries, up to `limit` that `fits` accepts (called in due order,
   * once per row, inside the transaction, with what other lease owners hold in flight); with
   * `rotate`, a full window's refused ones become due now, behind the rest. One transaction, and
   * one at a time among all the processes on the database, so that a limit `fits` checks against
   * `heldElsewhere` holds across them (nobody leases between the count and the lease).
   */
  leaseFitting(
    o: LeaseTerms & {
      limit: number;
      window: number;
      fits: (row: DueRow, heldElsewhere: readonly HeldInFlight[]) => boolean;
      rotate: boolean;
    },
  ): Promise<{ leased: LeasedDelivery[]; refused: number }>;
  /** Those of `ids` still queued, due or not. */
  leaseIds(o: LeaseTerms & { ids: readonly number[] }): Promise<LeasedDelivery[]>;
  /** Records each attempt and applies its outcome where `owner` still holds the lease; one transaction. */
  completeMany(o: { owner: string; nowMs: number; items: readonly CompletionItem[] }): Promise<boolean[]>;
  renewLeases(o: LeaseTerms & { ids: readonly number[] }): Promise<number[]>;
  releaseLeases(o: { ids: readonly number[]; owner: string; nowMs: number }): Promise<number>;
  /**
   * Breaks the leases expired at `expiredBy` and those whose owner starts with `ownerPrefix` (a
   * node's earlier, dead process: `NODE:`), or every in-flight one when neither is given, each as
   * `plan` decides, in one transaction; with `endStreaks`, first forgets the lease breaks of every
   * queued delivery (start-up: the death recovered from did not hold them).
   */
  recoverLeases(o: {
    nowMs: number;
    expiredBy?: number;
    ownerPrefix?: string;
    endStreaks?: boolean;
    plan: (d: InFlight) => LeaseBreak;
  }): Promise<RecoveryReport>;
  operatorAction(o: { action: OperatorAction; ids: readonly number[]; nowMs: number }): Promise<number>;
  wakeWaiting(o: { route: Route; prefix: string; nowMs: number }): Promise<number>;
  countByState(): Promise<Record<DeliveryState, number>>;
  nextDueAt(): Promise<number | undefined>;
  /** A message with its deliveries and their attempts, read in one snapshot. */
  messageDetail(idOrUuid: number | string): Promise<MessageDetail | undefined>;
  messageRow(idOrUuid: number | string): Promise<MessageRow | undefined>;
  deliveriesOf(messageId: number): Promise<DeliveryRow[]>;
  deliveryRow(id: number): Promise<DeliveryRow | undefined>;

  // The intakes.
  /** The message holding a replay key still in force. */
  replayHolder(o: { key: string; nowMs: number }): Promise<number | undefined>;
  recordResponse(o: { messageId: number; status: number; body: string }): Promise<void>;
  noteResent(o: { messageIds: readonly number[]; nowMs: number }): Promise<void>;
  refusalTotals(): Promise<RefusalTotals>;
  /** Stores refusals and prunes the oldest past `limits`, in one transaction; the totals after. */
  insertRefusals(o: {
    rows: readonly RefusalRow[];
    totals: RefusalTotals;
    limits: RefusalLimits;
  }): Promise<RefusalTotals>;

  // The console's reads.
  searchMessages(o: { filter: MessageFilter; limit: number; beforeId?: number }): Promise<LogPage>;
  summariesOf(ids: readonly number[], filter: MessageFilter): Promise<LogMessageSummary[]>;
  deliveriesForAction(o: { filter: MessageFilter; action: BulkAction; max: number }): Promise<number[]>;
  actionableDeliveries(ids: readonly number[], action: BulkAction): Promise<number[]>;
  unknownDeliveries(ids: readonly number[]): Promise<number[]>;
  deliveryIdsOfMessage(messageId: number): Promise<number[]>;
  deliveryStateCounts(): Promise<Record<DeliveryState, number>>;
  attemptsByOutcome(o: { nowMs: number; sizeMs: number; count: number }): Promise<OutcomeBucket[]>;
  recentFailures(limit: number): Promise<RecentFailure[]>;
  /** The latest attempt of the local deliveries to a domain, or of iMIP. */
  lastAttempt(o: { route: "local"; domain: string } | { route: "imip" }): Promise<LastAttempt | null>;
  inboundPeerStats(sinceMs: number): Promise<InboundPeerStats[]>;
  outboundPeerStats(sinceMs: number): Promise<OutboundPeerStats[]>;
  selectorsSeen(domain: string): Promise<SelectorSeen[]>;
  inbox(o: {
    recipient: string;
    limit: number;
    beforeId?: number;
  }): Promise<{ items: InboxItem[]; nextBeforeId?: number }>;
  changeCursor(nowMs: number): Promise<ChangeCursor>;
  /** Messages new or changed since the cursor, which it advances. */
  changedMessages(cursor: ChangeCursor, o: { nowMs: number; overlapMs: number }): Promise<number[]>;
  recordPeerFact(f: {
    domain: string;
    kind: PeerFactKind;
    name: string;
    value: string;
    source: PeerFactSource;
    atMs: number;
  }): Promise<void>;
  peerFactsOf(domain: string): Promise<PeerFactRow[]>;

  // Configuration kept in the database.
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** The capabilities serial, moved on when the fingerprint changed; one transaction. */
  capabilitiesSerial(fingerprint: string): Promise<number>;
  peerPolicy(domain: string): Promise<PeerPolicyRow | undefined>;
  peerPolicies(): Promise<PeerPolicyRow[]>;
  setPeerPolicy(p: PeerPolicyRow): Promise<void>;
  removePeerPolicy(domain: string): Promise<boolean>;
  keys(o?: { domain?: string }): Promise<DkimKeyRow[]>;
  insertKey(k: Omit<DkimKeyRow, "id" | "retireAfter">): Promise<void>;
  setKeyState(o: { id: number; state: KeyState; activatedAt?: number; retireAfter?: number }): Promise<void>;
  /** Makes a key active and its domain's active keys retiring until `retireAfter`, in one transaction. */
  activateKey(o: { id: number; nowMs: number; retireAfter: number }): Promise<{ retiring: string[] }>;
  /** Stores the admin password's hash, deletes `voidSettings` and ends every session, in one transaction. */
  setAdminPassword(o: { setting: string; hash: string; voidSettings: readonly string[] }): Promise<void>;

  // Console sessions.
  session(idHash: string): Promise<SessionRow | undefined>;
  insertSession(idHash: string, atMs: number): Promise<void>;
  touchSession(idHash: string, atMs: number): Promise<void>;
  deleteSession(idHash: string): Promise<void>;
  expireSessions(o: { seenBefore: number; createdBefore: number }): Promise<void>;
  countSessions(): Promise<number>;
  keepNewestSessions(keep: number): Promise<void>;
  clearSessions(): Promise<void>;

  // Monitoring.
  queueFacts(): Promise<QueueFacts>;
  /**
   * A cheap write that proves the database takes writes; throws when it cannot, or (SQLite) when the
   * file system it is on has less room than a few messages need.
   */
  probeWrite(nowMs: number): Promise<void>;
  /** How big the database is and how much of that is free space it will use again (bytes). */
  databaseSpace(): Promise<{ bytes: number; freeBytes: number }>;

  close(): Promise<void>;
}
