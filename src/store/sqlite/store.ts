/**
 * The Store over one bun:sqlite connection (src/store/store.ts says what each method does). Each
 * method's body is synchronous: a statement, or a bun:sqlite transaction opened and committed
 * inside it, so nothing is awaited between BEGIN and COMMIT, no two methods interleave on the
 * connection and no mutex is needed. Writing transactions start IMMEDIATE (they take the write lock
 * at BEGIN, so a busy database waits at BEGIN rather than failing on the first write); reads that
 * must see one snapshot run DEFERRED.
 */
import type { Database } from "bun:sqlite";
import { dirname } from "node:path";
import { completionColumns } from "../completion.ts";
import { ItipCopyError } from "../errors.ts";
import { withAttempts } from "../message-detail.ts";
import type { DeliveryToStore, MessageDetail, RecoveryReport, Store, StoredMessage } from "../store.ts";
import { attemptsOfMessage, insertAttempt } from "./attempts.ts";
import {
  clearSessions,
  countSessions,
  deleteSession,
  expireSessions,
  getSession,
  insertSession,
  keepNewestSessions,
  touchSession,
} from "./console-sessions.ts";
import {
  attemptsByOutcome,
  changeCursor,
  changedMessages,
  deliveryStateCounts,
  inboundPeerStats,
  lastAttempt,
  outboundPeerStats,
  recentFailures,
  selectorsSeen,
} from "./console-stats.ts";
import { type OpenDatabaseOptions, openDatabase } from "./database.ts";
import {
  applyOperatorAction,
  breakLease,
  completeLeased,
  deliveriesOfMessage,
  endBreakStreaks,
  getDeliveryRow,
  inFlightDeliveries,
  insertDelivery,
  leaseDue,
  leaseFitting,
  leaseIds,
  nextDueAt,
  postponeLeased,
  releaseLeases,
  renewLeases,
  wakeWaiting,
} from "./deliveries.ts";
import { allKeys, insertKey, keysOfDomain, setKeyState } from "./dkim-keys.ts";
import { GroupCommit, type GroupCommitOptions } from "./group-commit.ts";
import { probeWrite } from "./health-probe.ts";
import { inbox } from "./inbox.ts";
import { claimItipKeys, noteResent } from "./itip-keys.ts";
import {
  actionableDeliveries,
  deliveriesForAction,
  deliveryIdsOfMessage,
  searchMessages,
  summariesOf,
  unknownDeliveries,
} from "./message-search.ts";
import { getMessageRow, insertMessage, recordResponse } from "./messages.ts";
import { peerFactsOf, recordPeerFact } from "./peer-facts.ts";
import { allPeerPolicies, getPeerPolicy, removePeerPolicy, setPeerPolicy } from "./peer-policies.ts";
import { queueFacts } from "./queue-facts.ts";
import { insertRefusals, refusalTotals } from "./refusals.ts";
import { findReplay } from "./replays.ts";
import { spaceFacts } from "./retention.ts";
import { capabilitiesSerial, getSetting, setAdminPasswordHash, setSetting } from "./settings.ts";

/** Opens (locks, migrates) the database at `path` and returns the store over it; close() closes it. */
export function openSqliteStore(
  path: string,
  options: OpenDatabaseOptions & { groupCommit?: GroupCommitOptions } = {},
): SqliteStore {
  return new SqliteStore(openDatabase(path, options), {
    dir: dirname(path),
    groupCommit: options.groupCommit,
  });
}

/** The SQLite store over `db` (opened, locked and migrated by openDatabase). */
export function createSqliteStore(
  db: Database,
  o: { onClose?: () => void; groupCommit?: GroupCommitOptions } = {},
): SqliteStore {
  return new SqliteStore(db, o);
}

export class SqliteStore implements Store {
  readonly backend = "sqlite";
  /** The connection, for what only SQLite has: backups, checkpoints, compaction, retention. */
  readonly db: Database;
  readonly #onClose: (() => void) | undefined;
  /** The database's folder, whose file system probeWrite checks for room. */
  readonly #dir: string | undefined;

  /**
   * Accepts, attempts' outcomes and the dispatcher's leases arriving together share one transaction
   * (group-commit.ts); each caller goes on only once it has committed.
   */
  readonly #writes: GroupCommit;

  constructor(
    db: Database,
    o: { onClose?: () => void; dir?: string; groupCommit?: GroupCommitOptions } = {},
  ) {
    this.db = db;
    this.#onClose = o.onClose;
    this.#dir = o.dir;
    this.#writes = new GroupCommit(db, o.groupCommit);
  }

  /**
   * The writes the group commit gathers (accepts, attempts' outcomes, leases) wait until released: the
   * checkpointer holds them while it starts the WAL over (checkpointer.ts).
   */
  holdWrites(): void {
    this.#writes.hold();
  }

  releaseWrites(): void {
    this.#writes.release();
  }

  /**
   * Runs `work` (synchronous statements) in the group commit's next transaction, with the accepts of
   * the moment, and held with them (the retention pruner's batches: pruner.ts, batchedStep).
   */
  writeInBatch<T>(work: () => T): Promise<T> {
    return this.#writes.run(work);
  }

  /** Resolves once the transaction it shares with the accepts that arrived with it has committed. */
  async accept(o: Parameters<Store["accept"]>[0]): Promise<StoredMessage> {
    const db = this.db;
    const { body } = o.message;
    return this.#writes.run((): StoredMessage => {
      const messageId = insertMessage(db, o.message);
      const claims = o.message.itipKeys;
      const copies = claims
        ? claimItipKeys(db, { ...claims, messageId, nowMs: o.message.receivedAt })
        : new Map<string, number>();
      if (claims && claims.keys.length > 0 && copies.size === claims.keys.length)
        throw new ItipCopyError(copies);
      const fresh = o.deliveries.filter((d) => !copies.has(d.recipient));
      return { messageId, deliveryIds: this.#insertDeliveries(messageId, fresh, o.nowMs), copies };
    }, body.length);
  }

  async addDeliveries(o: { messageId: number; deliveries: readonly DeliveryToStore[]; nowMs: number }) {
    return this.db.transaction(() => this.#insertDeliveries(o.messageId, o.deliveries, o.nowMs)).immediate();
  }

  #insertDeliveries(messageId: number, deliveries: readonly DeliveryToStore[], nowMs: number): number[] {
    const ids = deliveries.map(({ attempt, ...d }) =>
      insertDelivery(this.db, { ...d, messageId, nowMs, attempts: attempt && d.state !== "queued" ? 1 : 0 }),
    );
    deliveries.forEach((d, i) => {
      if (d.attempt && d.state !== "queued") insertAttempt(this.db, ids[i]!, d.attempt);
    });
    return ids;
  }

  async lease(o: Parameters<Store["lease"]>[0]) {
    return leaseDue(this.db, o);
  }

  /**
   * Resolves with the leased deliveries once they are committed, in the transaction shared with the
   * outcomes and accepts of the same turn (a drain leases as attempts finish: one commit for both
   * instead of one each). Nothing is sent before then, so a crash loses at most a lease nobody acted
   * on, exactly as when the lease committed alone.
   */
  async leaseFitting(o: Parameters<Store["leaseFitting"]>[0]) {
    return this.#writes.run(() => leaseFitting(this.db, o));
  }

  async leaseIds(o: Parameters<Store["leaseIds"]>[0]) {
    return leaseIds(this.db, o);
  }

  /**
   * Resolves once the outcomes are committed, in the transaction they share with the other writes
   * that arrived in the same turn of the event loop (attempts that finished together: one commit
   * instead of one each). The dispatcher releases nothing and starts nothing that depends on them
   * before then, so a crash can lose only outcomes nobody has acted on: their leases expire and the
   * deliveries are tried again (at least once).
   */
  async completeMany(o: Parameters<Store["completeMany"]>[0]): Promise<boolean[]> {
    const db = this.db;
    const { owner, nowMs } = o;
    return this.#writes.run(() =>
      o.items.map(({ deliveryId: id, attempt, next }) => {
        if (next.state === "waiting") {
          const { nextAttemptAt, error } = next;
          return postponeLeased(db, { id, owner, nowMs, nextAttemptAt, error });
        }
        const applied = completeLeased(db, { id, owner, nowMs, ...completionColumns(next) });
        insertAttempt(db, id, attempt);
        return applied;
      }),
    );
  }

  async renewLeases(o: Parameters<Store["renewLeases"]>[0]) {
    return renewLeases(this.db, o);
  }

  async releaseLeases(o: Parameters<Store["releaseLeases"]>[0]) {
    return releaseLeases(this.db, o);
  }

  async recoverLeases(o: Parameters<Store["recoverLeases"]>[0]): Promise<RecoveryReport> {
    const db = this.db;
    return db
      .transaction((): RecoveryReport => {
        const report: RecoveryReport = { requeued: [], broken: [] };
        if (o.endStreaks) endBreakStreaks(db);
        for (const d of inFlightDeliveries(db, { expiredBy: o.expiredBy, ownerPrefix: o.ownerPrefix })) {
          const decision = o.plan(d);
          breakLease(db, { id: d.id, nowMs: o.nowMs, ...decision });
          (decision.state === "broken" ? report.broken : report.requeued).push(d.id);
        }
        return report;
      })
      .immediate();
  }

  async operatorAction(o: Parameters<Store["operatorAction"]>[0]) {
    return applyOperatorAction(this.db, o);
  }

  async wakeWaiting(o: Parameters<Store["wakeWaiting"]>[0]) {
    return wakeWaiting(this.db, o);
  }

  async countByState() {
    return deliveryStateCounts(this.db);
  }

  async nextDueAt() {
    return nextDueAt(this.db);
  }

  async messageDetail(idOrUuid: number | string): Promise<MessageDetail | undefined> {
    const db = this.db;
    return db
      .transaction((): MessageDetail | undefined => {
        const message = getMessageRow(db, idOrUuid);
        if (!message) return undefined;
        const deliveries = withAttempts(
          deliveriesOfMessage(db, message.id),
          attemptsOfMessage(db, message.id),
        );
        return { message, deliveries };
      })
      .deferred();
  }

  async messageRow(idOrUuid: number | string) {
    return getMessageRow(this.db, idOrUuid);
  }

  async deliveriesOf(messageId: number) {
    return deliveriesOfMessage(this.db, messageId);
  }

  async deliveryRow(id: number) {
    return getDeliveryRow(this.db, id);
  }

  async replayHolder(o: { key: string; nowMs: number }) {
    return findReplay(this.db, o);
  }

  async recordResponse(o: { messageId: number; status: number; body: string }) {
    recordResponse(this.db, o);
  }

  async noteResent(o: { messageIds: readonly number[]; nowMs: number }) {
    noteResent(this.db, o);
  }

  async refusalTotals() {
    return refusalTotals(this.db);
  }

  async insertRefusals(o: Parameters<Store["insertRefusals"]>[0]) {
    return insertRefusals(this.db, o);
  }

  async searchMessages(o: Parameters<Store["searchMessages"]>[0]) {
    return searchMessages(this.db, o);
  }

  async summariesOf(...a: Parameters<Store["summariesOf"]>) {
    return summariesOf(this.db, ...a);
  }

  async deliveriesForAction(o: Parameters<Store["deliveriesForAction"]>[0]) {
    return deliveriesForAction(this.db, o);
  }

  async actionableDeliveries(...a: Parameters<Store["actionableDeliveries"]>) {
    return actionableDeliveries(this.db, ...a);
  }

  async unknownDeliveries(ids: readonly number[]) {
    return unknownDeliveries(this.db, ids);
  }

  async deliveryIdsOfMessage(messageId: number) {
    return deliveryIdsOfMessage(this.db, messageId);
  }

  async deliveryStateCounts() {
    return deliveryStateCounts(this.db);
  }

  async attemptsByOutcome(o: Parameters<Store["attemptsByOutcome"]>[0]) {
    return attemptsByOutcome(this.db, o);
  }

  async recentFailures(limit: number) {
    return recentFailures(this.db, limit);
  }

  async lastAttempt(o: Parameters<Store["lastAttempt"]>[0]) {
    return lastAttempt(this.db, o);
  }

  async inboundPeerStats(sinceMs: number) {
    return inboundPeerStats(this.db, sinceMs);
  }

  async outboundPeerStats(sinceMs: number) {
    return outboundPeerStats(this.db, sinceMs);
  }

  async selectorsSeen(domain: string) {
    return selectorsSeen(this.db, domain);
  }

  async inbox(o: Parameters<Store["inbox"]>[0]) {
    return inbox(this.db, o);
  }

  async changeCursor(nowMs: number) {
    return changeCursor(this.db, nowMs);
  }

  async changedMessages(...a: Parameters<Store["changedMessages"]>) {
    return changedMessages(this.db, ...a);
  }

  async recordPeerFact(f: Parameters<Store["recordPeerFact"]>[0]) {
    recordPeerFact(this.db, f);
  }

  async peerFactsOf(domain: string) {
    return peerFactsOf(this.db, domain);
  }

  async getSetting(key: string) {
    return getSetting(this.db, key);
  }

  async setSetting(key: string, value: string) {
    setSetting(this.db, key, value);
  }

  async capabilitiesSerial(fingerprint: string) {
    return capabilitiesSerial(this.db, fingerprint);
  }

  async peerPolicy(domain: string) {
    return getPeerPolicy(this.db, domain);
  }

  async peerPolicies() {
    return allPeerPolicies(this.db);
  }

  async setPeerPolicy(p: Parameters<Store["setPeerPolicy"]>[0]) {
    setPeerPolicy(this.db, p);
  }

  async removePeerPolicy(domain: string) {
    return removePeerPolicy(this.db, domain);
  }

  async keys(o: { domain?: string } = {}) {
    return o.domain === undefined ? allKeys(this.db) : keysOfDomain(this.db, o.domain);
  }

  async insertKey(k: Parameters<Store["insertKey"]>[0]) {
    insertKey(this.db, k);
  }

  async setKeyState(o: Parameters<Store["setKeyState"]>[0]) {
    setKeyState(this.db, o);
  }

  async activateKey(o: { id: number; nowMs: number; retireAfter: number }) {
    const db = this.db;
    return db
      .transaction(() => {
        const target = allKeys(db).find((k) => k.id === o.id);
        const retiring: string[] = [];
        for (const k of target ? keysOfDomain(db, target.domain) : []) {
          if (k.state !== "active") continue;
          setKeyState(db, { id: k.id, state: "retiring", retireAfter: o.retireAfter });
          retiring.push(k.selector);
        }
        setKeyState(db, { id: o.id, state: "active", activatedAt: o.nowMs });
        return { retiring };
      })
      .immediate();
  }

  async setAdminPassword(o: Parameters<Store["setAdminPassword"]>[0]) {
    setAdminPasswordHash(this.db, o);
  }

  async session(idHash: string) {
    return getSession(this.db, idHash);
  }

  async insertSession(idHash: string, atMs: number) {
    insertSession(this.db, idHash, atMs);
  }

  async touchSession(idHash: string, atMs: number) {
    touchSession(this.db, idHash, atMs);
  }

  async deleteSession(idHash: string) {
    deleteSession(this.db, idHash);
  }

  async expireSessions(o: { seenBefore: number; createdBefore: number }) {
    expireSessions(this.db, o);
  }

  async countSessions() {
    return countSessions(this.db);
  }

  async keepNewestSessions(keep: number) {
    keepNewestSessions(this.db, keep);
  }

  async clearSessions() {
    clearSessions(this.db);
  }

  async queueFacts() {
    return queueFacts(this.db);
  }

  async probeWrite(nowMs: number) {
    probeWrite(this.db, nowMs, this.#dir === undefined ? undefined : { dir: this.#dir });
  }

  async databaseSpace() {
    const s = spaceFacts(this.db);
    return { bytes: s.pages * s.pageBytes, freeBytes: s.freePages * s.pageBytes };
  }

  async close() {
    // Accepts still waiting for their batch are committed (and answered) first.
    this.#writes.release();
    this.#writes.flush();
    // SQLite folds the WAL back and removes it when the last connection closes; with another one
    // open (`isched queue`, a backup, an sqlite3 shell) it would leave it behind: empty it here. A
    // reader in a transaction keeps it busy, which is no error: the WAL is committed data all the same.
    try {
      this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // Read-only or already failing: closing is what matters now.
    }
    if (this.#onClose) this.#onClose();
    else this.db.close();
  }
}
