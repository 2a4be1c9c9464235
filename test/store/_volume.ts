/**
 * A database with a realistic volume, written fast: messages spread over `days` (oldest first, as
 * isched writes them), each with its iCalendar body (2-6 KB), header fields, one to three deliveries
 * and one or two attempts per delivery; one in twenty is a refused request (metadata only, no
 * delivery). Deliveries are final except `queuedEvery`-th messages, which keep one queued delivery,
 * and the last day's, of which some are in flight. The recent messages hold replay and iTIP keys.
 *
 * Rows go in through SQL in transactions of 2,000 messages (a few seconds for 100,000) rather than
 * through the queue, whose one transaction per message would take minutes; the schema, its indexes,
 * triggers and foreign keys are the real ones.
 */
import type { Database } from "bun:sqlite";

const DAY_MS = 86_400_000;

export interface VolumeOptions {
  messages: number;
  /** The newest message is received at `nowMs`, the oldest `days` before. */
  days: number;
  nowMs: number;
  /** Every n-th message keeps a queued delivery (0: none). Default 500. */
  queuedEvery?: number;
  /** Deterministic filler. */
  seed?: number;
}

export interface VolumeFacts {
  messages: number;
  refusals: number;
  deliveries: number;
  attempts: number;
  /** Ids of messages with a queued or in-flight delivery. */
  held: number[];
}

function randomFrom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const encoder = new TextEncoder();

function calendar(i: number, bytes: number, random: () => number): Uint8Array {
  const head = `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//isched test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:event-${i}@example.com\r\nDTSTAMP:20260105T090000Z\r\nSUMMARY:Meeting ${i}\r\n`;
  let description = "DESCRIPTION:";
  while (description.length < bytes - head.length)
    description += `${Math.floor(random() * 1e12).toString(36)} agenda item ${i} `;
  return encoder.encode(`${head}${description}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`);
}

export function fillVolume(db: Database, o: VolumeOptions): VolumeFacts {
  const random = randomFrom(o.seed ?? 1);
  const queuedEvery = o.queuedEvery ?? 500;
  const insertMessage = db.query<{ id: number }, Record<string, string | number | Uint8Array | null>>(
    `INSERT INTO messages (uuid, received_at, direction, intake, peer_address, peer_domain, remote_message_id,
       originator, method, component, uid, summary, organizer, content_type, body, body_hash, headers,
       dkim_result, dkim_domain, dkim_selector, response_status, response_body, refusal, body_size)
     VALUES ($uuid, $at, $direction, 'ischedule', '192.0.2.7', $peer, $rid, $originator, 'REQUEST', 'VEVENT',
       $uid, $summary, $originator, 'text/calendar; method=REQUEST', $body, 'aGFzaA==', $headers, $dkim,
       $peer, 's1', $status, $response, $refusal, $bodySize) RETURNING id`,
  );
  const insertDelivery = db.query<{ id: number }, Record<string, string | number | null>>(
    `INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts, next_attempt_at,
       lease_owner, lease_expires_at, request_status, last_error, created_at, updated_at, final_at)
     VALUES ($messageId, $recipient, $domain, 'ischedule', 'https://peer.example/.well-known/ischedule', $state,
       $attempts, $next, $owner, $leaseExpires, $status, $error, $at, $at, $final) RETURNING id`,
  );
  const insertAttempt = db.query<never, Record<string, string | number | null>>(
    `INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target, http_status, request_status,
       outcome, error, response)
     VALUES ($deliveryId, $at, 120, 'ischedule', 'https://peer.example/.well-known/ischedule', 200, $status,
       $outcome, $error, $response)`,
  );
  const claimKey = (table: string) =>
    db.query<never, { key: string; messageId: number; expiresAt: number }>(
      `INSERT INTO ${table} (key, message_id, expires_at) VALUES ($key, $messageId, $expiresAt)`,
    );
  const replayKey = claimKey("replay_keys");
  const itipKey = claimKey("itip_keys");
  const headers = JSON.stringify([
    ["Host", "isched.example.com"],
    ["Content-Type", "text/calendar; method=REQUEST"],
    ["Originator", "mailto:alice@peer.example"],
    ["Recipient", "mailto:bob@example.com"],
    [
      "DKIM-Signature",
      `v=1; a=rsa-sha256; d=peer.example; s=s1; c=ischedule-relaxed/simple; h=Originator:Recipient; bh=${"x".repeat(44)}; b=${"y".repeat(344)}`,
    ],
  ]);
  const response = `<?xml version="1.0" encoding="utf-8"?><schedule-response xmlns="urn:ietf:params:xml:ns:ischedule"><response><recipient>mailto:bob@example.com</recipient><request-status>2.0;Success</request-status></response></schedule-response>`;
  const facts: VolumeFacts = { messages: 0, refusals: 0, deliveries: 0, attempts: 0, held: [] };
  const spanMs = o.days * DAY_MS;
  const write = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const at = o.nowMs - spanMs + Math.floor((spanMs * i) / Math.max(1, o.messages - 1));
      const refused = i % 20 === 7;
      const peer = `peer${i % 40}.example`;
      const id = insertMessage.get({
        uuid: `00000000-0000-7000-8000-${i.toString(16).padStart(12, "0")}`,
        at,
        direction: i % 5 < 3 ? "inbound" : "outbound",
        peer,
        rid: `message-${i}@${peer}`,
        originator: `mailto:user${i % 300}@${peer}`,
        uid: `event-${i}@example.com`,
        summary: `Meeting ${i}`,
        body: refused ? new Uint8Array(0) : calendar(i, 2048 + Math.floor(random() * 4096), random),
        headers,
        dkim: refused ? "fail" : "pass",
        status: refused ? 403 : 200,
        response: refused ? "<error/>" : response,
        refusal: refused ? "The DKIM signature does not verify: body hash mismatch" : null,
        bodySize: refused ? 4000 : null,
      })!.id;
      facts.messages++;
      if (refused) {
        facts.refusals++;
        continue;
      }
      const recent = o.nowMs - at < DAY_MS;
      if (recent) {
        replayKey.run({ key: `dkim\n${peer}\nmessage-${i}\nbh${i}`, messageId: id, expiresAt: at + DAY_MS });
        itipKey.run({ key: `itip\n${i}`, messageId: id, expiresAt: at + DAY_MS });
      }
      const deliveryCount = 1 + (i % 3);
      const holdsQueued = queuedEvery > 0 && i % queuedEvery === 3;
      const inFlight = recent && i % 50 === 11;
      if (holdsQueued || inFlight) facts.held.push(id);
      for (let r = 0; r < deliveryCount; r++) {
        const state = r === 0 && holdsQueued ? "queued" : r === 0 && inFlight ? "in-flight" : "delivered";
        const failedOnce = i % 7 === 0;
        const did = insertDelivery.get({
          messageId: id,
          recipient: `mailto:user${r}@example${i % 10}.com`,
          domain: `example${i % 10}.com`,
          state,
          attempts: failedOnce ? 2 : 1,
          next: state === "queued" ? at + 3_600_000 : null,
          owner: state === "in-flight" ? "host:1" : null,
          leaseExpires: state === "in-flight" ? o.nowMs + 300_000 : null,
          status: state === "delivered" ? "2.0;Success" : null,
          error: failedOnce ? "HTTP 503 from peer" : null,
          at,
          final: state === "delivered" ? at : null,
        })!.id;
        facts.deliveries++;
        if (failedOnce) {
          insertAttempt.run({
            deliveryId: did,
            at,
            status: null,
            outcome: "temporary",
            error: "HTTP 503 Service Unavailable",
            response: "Service Unavailable",
          });
          facts.attempts++;
        }
        insertAttempt.run({
          deliveryId: did,
          at: at + 1,
          status: "2.0;Success",
          outcome: "delivered",
          error: null,
          response,
        });
        facts.attempts++;
      }
    }
  });
  for (let from = 0; from < o.messages; from += 2000)
    write.immediate(from, Math.min(o.messages, from + 2000));
  return facts;
}
