/**
 * Peer policies, peer facts and isched's own DKIM keys on PostgreSQL (src/store/sqlite/
 * peer-policies.ts, peer-facts.ts, dkim-keys.ts). Key activation is one transaction that locks the
 * key's row, retires its domain's other active keys, then activates it: two activations at once
 * (two nodes, a double click) run one after the other, and the partial unique index on active keys
 * (migration 8) turns any mistake into an error rather than two signing keys.
 */
import type { DkimKeyRow, KeyState, PeerFactRow, PeerPolicyRow, Store } from "../store.ts";
import { changes, type Row, type Runner, rows, withNumbers } from "./_values.ts";

const POLICY_COLUMNS = `domain, trust, allow_from AS "allowFrom", signers, note, updated_at AS "updatedAt"`;
const policyRow = (r: Row) => withNumbers<PeerPolicyRow>(r, ["updatedAt"]);

export async function getPeerPolicy(q: Runner, domain: string): Promise<PeerPolicyRow | undefined> {
  const [r] = await rows(q, `SELECT ${POLICY_COLUMNS} FROM peer_policies WHERE domain = $1`, [domain]);
  return r ? policyRow(r) : undefined;
}

export async function allPeerPolicies(q: Runner): Promise<PeerPolicyRow[]> {
  return (await rows(q, `SELECT ${POLICY_COLUMNS} FROM peer_policies ORDER BY domain`)).map(policyRow);
}

export async function setPeerPolicy(q: Runner, p: PeerPolicyRow): Promise<void> {
  await changes(
    q,
    `INSERT INTO peer_policies (domain, trust, allow_from, signers, note, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (domain) DO UPDATE SET trust = excluded.trust, allow_from = excluded.allow_from,
      signers = excluded.signers, note = excluded.note, updated_at = excluded.updated_at`,
    [p.domain, p.trust, p.allowFrom, p.signers, p.note, p.updatedAt],
  );
}

export async function removePeerPolicy(q: Runner, domain: string): Promise<boolean> {
  return (await changes(q, "DELETE FROM peer_policies WHERE domain = $1", [domain])) === 1;
}

export async function recordPeerFact(q: Runner, f: Parameters<Store["recordPeerFact"]>[0]): Promise<void> {
  await changes(
    q,
    `INSERT INTO peer_facts (domain, kind, name, value, source, learned_at, confirmed_at)
      VALUES ($1, $2, $3, $4, $5, $6, $6)
    ON CONFLICT (domain, kind, name) DO UPDATE SET
      learned_at = CASE WHEN peer_facts.value = excluded.value THEN peer_facts.learned_at ELSE excluded.learned_at END,
      value = excluded.value, source = excluded.source, confirmed_at = excluded.confirmed_at`,
    [f.domain, f.kind, f.name, f.value, f.source, f.atMs],
  );
}

export async function peerFactsOf(q: Runner, domain: string): Promise<PeerFactRow[]> {
  const found = await rows(
    q,
    `SELECT domain, kind, name, value, source, learned_at AS "learnedAt", confirmed_at AS "confirmedAt"
      FROM peer_facts WHERE domain = $1 ORDER BY kind, name`,
    [domain],
  );
  return found.map((r) => withNumbers<PeerFactRow>(r, ["learnedAt", "confirmedAt"]));
}

const KEY_COLUMNS = `id, domain, selector, algorithm, bits, private_key_pem AS "privateKeyPem", record, state,
  created_at AS "createdAt", activated_at AS "activatedAt", retire_after AS "retireAfter"`;
const keyRow = (r: Row) => withNumbers<DkimKeyRow>(r, ["id", "createdAt", "activatedAt", "retireAfter"]);

export async function keys(q: Runner, o: { domain?: string } = {}): Promise<DkimKeyRow[]> {
  const found =
    o.domain === undefined
      ? await rows(q, `SELECT ${KEY_COLUMNS} FROM dkim_keys ORDER BY domain, id`)
      : await rows(q, `SELECT ${KEY_COLUMNS} FROM dkim_keys WHERE domain = $1 ORDER BY id`, [o.domain]);
  return found.map(keyRow);
}

export async function insertKey(q: Runner, k: Omit<DkimKeyRow, "id" | "retireAfter">): Promise<void> {
  await changes(
    q,
    `INSERT INTO dkim_keys (domain, selector, algorithm, bits, private_key_pem, record, state, created_at, activated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      k.domain,
      k.selector,
      k.algorithm,
      k.bits,
      k.privateKeyPem,
      k.record,
      k.state,
      k.createdAt,
      k.activatedAt,
    ],
  );
}

export async function setKeyState(
  q: Runner,
  o: { id: number; state: KeyState; activatedAt?: number; retireAfter?: number },
): Promise<void> {
  await changes(
    q,
    `UPDATE dkim_keys SET state = $2, activated_at = coalesce($3, activated_at), retire_after = $4 WHERE id = $1`,
    [o.id, o.state, o.activatedAt ?? null, o.retireAfter ?? null],
  );
}

export function activateKey(
  sql: Runner,
  o: { id: number; nowMs: number; retireAfter: number },
): Promise<{ retiring: string[] }> {
  return sql.begin(async (tx) => {
    const [target] = await rows(tx, "SELECT domain FROM dkim_keys WHERE id = $1 FOR UPDATE", [o.id]);
    const retiring = target
      ? await rows(
          tx,
          `SELECT id, selector FROM dkim_keys WHERE domain = $1 AND state = 'active' AND id <> $2
            ORDER BY id FOR UPDATE`,
          [target.domain, o.id],
        )
      : [];
    for (const k of retiring)
      await setKeyState(tx, { id: Number(k.id), state: "retiring", retireAfter: o.retireAfter });
    await setKeyState(tx, { id: o.id, state: "active", activatedAt: o.nowMs });
    return { retiring: retiring.map((r) => String(r.selector)) };
  });
}
