/**
 * SIGHUP: take again the files reload-plan.ts lists, all or nothing. The plan is made first (every
 * file read and checked); when it has errors, each is logged on its line and nothing changes. When
 * it is good, each change goes to the part that uses it (the appliers the server gives: the
 * endpoint's setCertificate, the SMTP intake's secure context, the key resolver's peer keys, ...)
 * and is logged. systemd hears RELOADING=1 at the start and READY=1 at the end, whatever the
 * outcome (sd_notify(3): a reload must end with READY=1).
 *
 * Reloads do not overlap: a SIGHUP during one makes one more run after it (files may have changed
 * again meanwhile), and more SIGHUPs meanwhile add nothing.
 */
import type { Logger } from "../log/logger.ts";
import { type Fingerprints, planReload, type ReloadChange, type ReloadSources } from "./reload-plan.ts";
import type { NotifyResult } from "./sd-notify.ts";

type Applier<K extends ReloadChange["kind"]> = (
  change: Extract<ReloadChange, { kind: K }>,
) => void | Promise<void>;

/** What to do with each kind of change; a kind without one cannot be taken without a restart. */
export type ReloadAppliers = { readonly [K in ReloadChange["kind"]]?: Applier<K> };

export interface ReloadOutcome {
  /** Items taken. */
  readonly applied: readonly string[];
  /** Items whose files did not change. */
  readonly unchanged: readonly string[];
  /** One line each; when the plan had errors, nothing was applied. */
  readonly errors: readonly string[];
}

export interface Reloader {
  reload(): Promise<ReloadOutcome>;
  /** Reloads on SIGHUP from now on; returns a function that stops that. */
  listen(): () => void;
}

export function createReloader(o: {
  sources: ReloadSources;
  /** What start-up loaded (fingerprintSources). */
  loaded: Fingerprints;
  appliers: ReloadAppliers;
  log: Logger;
  notifier?: { reloading(status?: string): NotifyResult; ready(status?: string): NotifyResult };
  nowMs?: () => number;
}): Reloader {
  const now = o.nowMs ?? Date.now;
  let loaded = o.loaded;
  let running: Promise<ReloadOutcome> | undefined;
  let again: Promise<ReloadOutcome> | undefined;

  const once = async (): Promise<ReloadOutcome> => {
    o.notifier?.reloading("reloading certificates, keys and secrets");
    const plan = planReload(o.sources, loaded, { nowMs: now() });
    if (!plan.ok) {
      for (const e of plan.errors) o.log.log("error", `reload refused, nothing changed: ${e}`);
      o.notifier?.ready(`reload refused: ${plan.errors[0]}`);
      return { applied: [], unchanged: [], errors: plan.errors };
    }
    const applied: string[] = [];
    const errors: string[] = [];
    const next: Record<string, string> = { ...loaded };
    for (const change of plan.changes) {
      const name = itemName(change);
      const apply = o.appliers[change.kind] as Applier<typeof change.kind> | undefined;
      if (!apply) {
        errors.push(`${name} changed, and this configuration takes it only at a restart`);
        o.log.log("warn", "reload: a changed file needs a restart", { item: name });
        continue;
      }
      try {
        await apply(change as never);
        next[name] = plan.fingerprints[name]!;
        applied.push(name);
        o.log.log("info", "reload: now in use", { item: name, ...detail(change) });
      } catch (e) {
        errors.push(`${name}: ${(e as Error)?.message ?? String(e)}`);
        o.log.log("error", "reload: could not apply", {
          item: name,
          error: (e as Error)?.message ?? String(e),
        });
      }
    }
    loaded = next;
    if (applied.length === 0 && errors.length === 0) o.log.log("info", "reload: no file changed");
    o.notifier?.ready(
      errors.length > 0
        ? `reloaded with problems: ${errors[0]}`
        : `reloaded: ${applied.join(", ") || "nothing changed"}`,
    );
    return { applied, unchanged: plan.unchanged, errors };
  };

  const reload = (): Promise<ReloadOutcome> => {
    if (!running) {
      running = once().finally(() => {
        running = undefined;
      });
      return running;
    }
    again ??= running.then(() => {
      again = undefined;
      return reload();
    });
    return again;
  };

  return {
    reload,
    listen() {
      const onHup = () => void reload();
      process.on("SIGHUP", onHup);
      return () => process.off("SIGHUP", onHup);
    },
  };
}

function itemName(c: ReloadChange): string {
  return c.kind === "peer-key" ? `peer-key ${c.entry.domain}:${c.entry.selector}` : c.kind;
}

function detail(c: ReloadChange): Record<string, string> {
  if (c.kind === "tls") return { notAfter: new Date(c.notAfterMs).toISOString() };
  if (c.kind === "dkim-key") return { name: `${c.selector}._domainkey.${c.domain}` };
  return {};
}
