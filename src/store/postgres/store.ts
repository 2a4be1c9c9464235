/**
 * The Store over PostgreSQL through Bun.SQL (docs/store-interface.md), for several isched nodes on
 * one database. Each method is one statement on the pool, or one transaction (`sql.begin`) that
 * reserves a connection, runs its statements and commits; nothing is held open across the caller's
 * awaits. The statements are those of src/store/sqlite in PostgreSQL's form, with the fixes the
 * races need when several nodes share the queue: leasing and lease recovery skip rows another node
 * holds locked (FOR UPDATE SKIP LOCKED), key claims are ON CONFLICT upserts, a lease is broken only
 * while the owner that was seen still holds it.

 */
import { SQL } from "bun";
import { completionColumns } from "../completion.ts";
import { ItipCopyError } from "../errors.ts";
import { splitWindow } from "../lease-window.ts";
import { withAttempts } from "../message-detail.ts";
import type {
  DeliveryToStore,
  LeasedDelivery,
  MessageDetail,
  RecoveryReport,
  Store,
  StoredMessage,
} from "../store.ts";
import type { Runner } from "./_values.ts";
import * as reads from "./console-reads.ts";
import {
  applyOperatorAction,
  breakLease,
  completeLeased,
  countDeliveriesByState,
  deliveriesOfMessage,
  endBreakStreaks,
  getDeliveryRow,
  heldElsewhere,
  insertDelivery,
  leaseDue,
  leaseIds,
  lockDueHead,
  lockInFlight,
  nextDueAt,
  postponeLeased,
  releaseLeases,
  renewLeases,
  rotateDue,
  serializeLeasing,
  wakeWaiting,
} from "./deliveries.ts";
import { claimItipKeys, keyHolder, noteResent } from "./key-claims.ts";
import { deliveriesForAction, searchMessages, summariesOf } from "./message-search.ts";
import {
  attemptsOfMessage,
  getMessageRow,
  insertAttempt,
  insertMessage,
  recordResponse,
} from "./messages.ts";
import { migratePostgres } from "./migrate.ts";
import { databaseSpace, probeWrite, queueFacts } from "./monitoring.ts";
import {
  allNodes,
  announceWork,
  beat,
  claimNode,
  markStopped,
  type NodeRow,
  QUEUE_CHANNEL,
} from "./nodes.ts";
import {
  activateKey,
  allPeerPolicies,
  getPeerPolicy,
  insertKey,
  keys,
  peerFactsOf,
  recordPeerFact,
  removePeerPolicy,
  setKeyState,
  setPeerPolicy,
} from "./peers-and-keys.ts";
import { insertRefusals, refusalTotals } from "./refusals.ts";
import { capabilitiesSerial, getSetting, sessions, setAdminPasswordHash, setSetting } from "./settings.ts";

/** Connects to `url`, migrates the schema (under the migrators' advisory lock) and returns the store. */
export async function openPostgresStore(
  url: string,
  o: { maxConnections?: number; connectTimeoutSeconds?: number } = {},
): Promise<PostgresStore> {
  const sql = new SQL({ url, max: o.maxConnections ?? 10, connectionTimeout: o.connectTimeoutSeconds });
  try {
    await migratePostgres(sql);
  } catch (e) {
    await sql.close({ timeout: 1 });
    throw e;
  }
  return new PostgresStore(sql);
}

export class PostgresStore implements Store {
  readonly backend = "postgres";

  constructor(readonly sql: Runner) {}

  async accept(o: Parameters<Store["accept"]>[0]): Promise<StoredMessage> {
    return this.sql.begin(async (tx): Promise<StoredMessage> => {
      const messageId = await insertMessage(tx, o.message);
      const claims = o.message.itipKeys;
      const copies = claims
        ? await claimItipKeys(tx, { ...claims, messageId, nowMs: o.message.receivedAt })
        : new Map<string, number>();
      if (claims && claims.keys.length > 0 && copies.size === claims.keys.length)
        throw new ItipCopyError(copies);
      const fresh = o.deliveries.filter((d) => !copies.has(d.recipient));
      return { messageId, deliveryIds: await insertDeliveries(tx, messageId, fresh, o.nowMs), copies };
    });
  }

  async addDeliveries(o: { messageId: number; deliveries: readonly DeliveryToStore[]; nowMs: number }) {
    return this.sql.begin((tx) => insertDeliveries(tx, o.messageId, o.deliveries, o.nowMs));
  }

  lease(o: Parameters<Store["lease"]>[0]) {
    return leaseDue(this.sql, o);
  }

  /**
   * As on SQLite (src/store/sqlite/deliveries.ts), with the window locked FOR UPDATE SKIP LOCKED,
   * and one node at a time (serializeLeasing): `fits` sees what the other nodes hold in flight, and
   * none of them leases before this lease commits, so a per-peer limit holds across the nodes.
   */
  async leaseFitting(o: Parameters<Store["leaseFitting"]>[0]) {
    return this.sql.begin(async (tx) => {
      await serializeLeasing(tx);
      const head = await lockDueHead(tx, { nowMs: o.nowMs, limit: o.window });
      const elsewhere = head.length === 0 ? [] : await heldElsewhere(tx, o.owner);
      const { chosen, refused } = splitWindow(head, {
        limit: o.limit,
        heldElsewhere: elsewhere,
        fits: o.fits,
      });
      if (o.rotate && head.length === o.window && refused.length > 0)
        await rotateDue(tx, { nowMs: o.nowMs, ids: refused });
      if (chosen.length === 0) return { leased: [] as LeasedDelivery[], refused: refused.length };
      const leased = await leaseIds(tx, { ...o, ids: chosen });
      leased.sort((a, b) => a.nextAttemptAt! - b.nextAttemptAt! || a.id - b.id);
      return { leased, refused: refused.length };
    });
  }

  leaseIds(o: Parameters<Store["leaseIds"]>[0]) {
    return leaseIds(this.sql, o);
  }

  async completeMany(o: Parameters<Store["completeMany"]>[0]): Promise<boolean[]> {
    const { owner, nowMs } = o;
    return this.sql.begin(async (tx) => {
      const applied: boolean[] = [];
      for (const { deliveryId: id, attempt, next } of o.items) {
        if (next.state === "waiting") {
          const { nextAttemptAt, error } = next;
          applied.push(await postponeLeased(tx, { id, owner, nowMs, nextAttemptAt, error }));
          continue;
        }
        applied.push(await completeLeased(tx, { id, owner, nowMs, ...completionColumns(next) }));
        await insertAttempt(tx, id, attempt);
      }
      return applied;
    });
  }

  renewLeases(o: Parameters<Store["renewLeases"]>[0]) {
    return renewLeases(this.sql, o);
  }

  releaseLeases(o: Parameters<Store["releaseLeases"]>[0]) {
    return releaseLeases(this.sql, o);
  }

  async recoverLeases(o: Parameters<Store["recoverLeases"]>[0]): Promise<RecoveryReport> {
    return this.sql.begin(async (tx) => {
      const report: RecoveryReport = { requeued: [], broken: [] };
      if (o.endStreaks) await endBreakStreaks(tx);
      for (const d of await lockInFlight(tx, { expiredBy: o.expiredBy, ownerPrefix: o.ownerPrefix })) {
        const decision = o.plan(d);
        const nextAttemptAt = decision.state === "queued" ? decision.nextAttemptAt : null;
        const broke = await breakLease(tx, {
          id: d.id,
          leaseOwner: d.leaseOwner,
          nowMs: o.nowMs,
          state: decision.state,
          nextAttemptAt,
          error: decision.error,
        });
        if (broke) (decision.state === "broken" ? report.broken : report.requeued).push(d.id);
      }
      return report;
    });
  }

  operatorAction(o: Parameters<Store["operatorAction"]>[0]) {
    return applyOperatorAction(this.sql, o);
  }

  wakeWaiting(o: Parameters<Store["wakeWaiting"]>[0]) {
    return wakeWaiting(this.sql, o);
  }

  countByState() {
    return countDeliveriesByState(this.sql);
  }

  nextDueAt() {
    return nextDueAt(this.sql);
  }

  /** One snapshot: a REPEATABLE READ, read-only transaction. */
  async messageDetail(idOrUuid: number | string): Promise<MessageDetail | undefined> {
    return this.sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
      const message = await getMessageRow(tx, idOrUuid);
      if (!message) return undefined;
      const deliveries = withAttempts(
        await deliveriesOfMessage(tx, message.id),
        await attemptsOfMessage(tx, message.id),
      );
      return { message, deliveries };
    });
  }

  messageRow(idOrUuid: number | string) {
    return getMessageRow(this.sql, idOrUuid);
  }

  deliveriesOf(messageId: number) {
    return deliveriesOfMessage(this.sql, messageId);
  }

  deliveryRow(id: number) {
    return getDeliveryRow(this.sql, id);
  }

  replayHolder(o: { key: string; nowMs: number }) {
    return keyHolder(this.sql, "replay_keys", o);
  }

  async recordResponse(o: { messageId: number; status: number; body: string }) {
    await recordResponse(this.sql, o);
  }

  noteResent(o: { messageIds: readonly number[]; nowMs: number }) {
    return noteResent(this.sql, o);
  }

  refusalTotals() {
    return refusalTotals(this.sql);
  }

  insertRefusals(o: Parameters<Store["insertRefusals"]>[0]) {
    return insertRefusals(this.sql, o);
  }

  searchMessages(o: Parameters<Store["searchMessages"]>[0]) {
    return searchMessages(this.sql, o);
  }

  summariesOf(...a: Parameters<Store["summariesOf"]>) {
    return summariesOf(this.sql, ...a);
  }

  deliveriesForAction(o: Parameters<Store["deliveriesForAction"]>[0]) {
    return deliveriesForAction(this.sql, o);
  }

  actionableDeliveries(...a: Parameters<Store["actionableDeliveries"]>) {
    return reads.actionableDeliveries(this.sql, ...a);
  }

  unknownDeliveries(ids: readonly number[]) {
    return reads.unknownDeliveries(this.sql, ids);
  }

  deliveryIdsOfMessage(messageId: number) {
    return reads.deliveryIdsOfMessage(this.sql, messageId);
  }

  deliveryStateCounts() {
    return reads.deliveryStateCounts(this.sql);
  }

  attemptsByOutcome(o: Parameters<Store["attemptsByOutcome"]>[0]) {
    return reads.attemptsByOutcome(this.sql, o);
  }

  recentFailures(limit: number) {
    return reads.recentFailures(this.sql, limit);
  }

  lastAttempt(o: Parameters<Store["lastAttempt"]>[0]) {
    return reads.lastAttempt(this.sql, o);
  }

  inboundPeerStats(sinceMs: number) {
    return reads.inboundPeerStats(this.sql, sinceMs);
  }

  outboundPeerStats(sinceMs: number) {
    return reads.outboundPeerStats(this.sql, sinceMs);
  }

  selectorsSeen(domain: string) {
    return reads.selectorsSeen(this.sql, domain);
  }

  inbox(o: Parameters<Store["inbox"]>[0]) {
    return reads.inbox(this.sql, o);
  }

  changeCursor(nowMs: number) {
    return reads.changeCursor(this.sql, nowMs);
  }

  changedMessages(...a: Parameters<Store["changedMessages"]>) {
    return reads.changedMessages(this.sql, ...a);
  }

  getSetting(key: string) {
    return getSetting(this.sql, key);
  }

  setSetting(key: string, value: string) {
    return setSetting(this.sql, key, value);
  }

  capabilitiesSerial(fingerprint: string) {
    return capabilitiesSerial(this.sql, fingerprint);
  }

  setAdminPassword(o: Parameters<Store["setAdminPassword"]>[0]) {
    return setAdminPasswordHash(this.sql, o);
  }

  session(idHash: string) {
    return sessions.get(this.sql, idHash);
  }

  async insertSession(idHash: string, atMs: number) {
    await sessions.insert(this.sql, idHash, atMs);
  }

  async touchSession(idHash: string, atMs: number) {
    await sessions.touch(this.sql, idHash, atMs);
  }

  async deleteSession(idHash: string) {
    await sessions.delete(this.sql, idHash);
  }

  async expireSessions(o: { seenBefore: number; createdBefore: number }) {
    await sessions.expire(this.sql, o);
  }

  countSessions() {
    return sessions.count(this.sql);
  }

  async keepNewestSessions(keep: number) {
    await sessions.keepNewest(this.sql, keep);
  }

  async clearSessions() {
    await sessions.clear(this.sql);
  }

  recordPeerFact(f: Parameters<Store["recordPeerFact"]>[0]) {
    return recordPeerFact(this.sql, f);
  }

  peerFactsOf(domain: string) {
    return peerFactsOf(this.sql, domain);
  }

  peerPolicy(domain: string) {
    return getPeerPolicy(this.sql, domain);
  }

  peerPolicies() {
    return allPeerPolicies(this.sql);
  }

  setPeerPolicy(p: Parameters<Store["setPeerPolicy"]>[0]) {
    return setPeerPolicy(this.sql, p);
  }

  removePeerPolicy(domain: string) {
    return removePeerPolicy(this.sql, domain);
  }

  keys(o: { domain?: string } = {}) {
    return keys(this.sql, o);
  }

  insertKey(k: Parameters<Store["insertKey"]>[0]) {
    return insertKey(this.sql, k);
  }

  setKeyState(o: Parameters<Store["setKeyState"]>[0]) {
    return setKeyState(this.sql, o);
  }

  activateKey(o: { id: number; nowMs: number; retireAfter: number }) {
    return activateKey(this.sql, o);
  }

  queueFacts() {
    return queueFacts(this.sql);
  }

  probeWrite(nowMs: number) {
    return probeWrite(this.sql, nowMs);
  }

  databaseSpace() {
    return databaseSpace(this.sql);
  }

  // The nodes on this database (nodes.ts): not in the Store interface, since one process owns SQLite.
  claimNode(o: Parameters<typeof claimNode>[1]) {
    return claimNode(this.sql, o);
  }

  beat(o: Parameters<typeof beat>[1]) {
    return beat(this.sql, o);
  }

  markStopped(o: Parameters<typeof markStopped>[1]) {
    return markStopped(this.sql, o);
  }

  nodes(): Promise<(NodeRow & { inFlight: number })[]> {
    return allNodes(this.sql);
  }

  /** NOTIFY on the queue channel: deliveries are due (`from`: the announcing node). */
  announceWork(from: string): Promise<void> {
    return announceWork(this.sql, from);
  }

  /**
   * LISTEN on the queue channel: `onWork` gets each announcement's node id; `onListening` runs once
   * the server confirmed, and again after the listener reconnected (work announced meanwhile was
   * missed: look at the queue). Returns the function that stops listening.
   */
  async onWork(onWork: (from: string) => void, onListening: () => void): Promise<() => Promise<void>> {
    const subscription = await this.sql.listen(QUEUE_CHANNEL, onWork, onListening);
    return () => subscription.unlisten();
  }

  async close() {
    await this.sql.close({ timeout: 1 });
  }
}

async function insertDeliveries(
  tx: Runner,
  messageId: number,
  deliveries: readonly DeliveryToStore[],
  nowMs: number,
): Promise<number[]> {
  const ids: number[] = [];
  for (const { attempt, ...d } of deliveries) {
    const decided = attempt !== undefined && d.state !== "queued";
    ids.push(await insertDelivery(tx, { ...d, messageId, nowMs, attempts: decided ? 1 : 0 }));
  }
  for (const [i, d] of deliveries.entries())
    if (d.attempt && d.state !== "queued") await insertAttempt(tx, ids[i]!, d.attempt);
  return ids;
}
