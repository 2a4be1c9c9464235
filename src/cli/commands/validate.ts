/**
 * `isched validate [serve's flags]`: everything `isched serve` would check before it starts, without
 * starting and without changing anything: the flags and ISCHED_* variables, the files they name (TLS
 * pair, CA, keys, accounts, secrets), conflicts between settings, the listening addresses, the data
 * folder and the database in it (schema, keys). The configuration is checked by the very code serve
 * runs (serveSettings, dataFolderPlan, checkAddressesFree, riskySettings), so the two cannot disagree.
 */

import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { ConfigError, UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { configurationWarnings } from "../../config/from-flags.ts";
import { checkAddressesFree, type ListenAddress } from "../../config/ports.ts";
import { riskySettings } from "../../config/risky-settings.ts";
import type { ServeConfig } from "../../config/serve-config.ts";
import { serveFlags } from "../../config/serve-flags.ts";
import { finding } from "../../diagnose/check.ts";
import { dataFolderPlan } from "../../server/data-folder.ts";
import { StoreError } from "../../store/errors.ts";
import { type DatabaseFacts, factsOf, openReadOnly } from "../../store/sqlite/backup.ts";
import { keysOfDomain } from "../../store/sqlite/dkim-keys.ts";
import { MIGRATIONS, newerSchema } from "../../store/sqlite/migrations.ts";
import { allPeerPolicies } from "../../store/sqlite/peer-policies.ts";
import type { PeerPolicyRow } from "../../store/store.ts";
import { type Check, formatReport, worst } from "../check-report.ts";
import { defineCommand } from "../command.ts";
import { effectiveLines, formatEffective } from "../effective-config.ts";
import { databasePathOf, gatewayHolding } from "../running-server.ts";
import { serveSettings } from "./serve.ts";

const check = (id: string, status: Check["status"], subject: string, detail: string, fix?: string): Check =>
  finding(id, status, subject, detail, { fix });

async function addressesCheck(c: ServeConfig): Promise<Check> {
  const addresses: ListenAddress[] = [
    { flag: "--listen", ...c.listen },
    { flag: "--console", ...c.console },
    ...(c.smtpIntake ? [{ flag: "--smtp-listen", ...c.smtpIntake.listen }] : []),
  ];
  const list = addresses.map((a) => `${a.flag} ${a.host}:${a.port}`).join(", ");
  try {
    await checkAddressesFree(addresses);
    return check("addresses", "pass", "addresses", `${list}: free`);
  } catch (e) {
    const holder = gatewayHolding(c.dataDir);
    if (holder && /in use/.test((e as Error).message))
      return check(
        "addresses",
        "warn",
        "addresses",
        `${(e as Error).message.replace(/ \(is another.*\)$/, "")}, by the isched running on ${c.dataDir} (pid ${holder.pid})`,
        "nothing, if this configuration is to replace that isched: stop it first, then start this one",
      );
    return check(
      "addresses",
      "fail",
      "addresses",
      (e as Error).message,
      "free the address or choose another one",
    );
  }
}

function dataFolderCheck(c: ServeConfig): Check {
  try {
    const steps = dataFolderPlan(c.dataDir);
    if (steps.length === 0)
      return check("data-folder", "pass", `data folder ${c.dataDir}`, "private to isched's user");
    if (!existsSync(c.dataDir))
      return check(
        "data-folder",
        "pass",
        `data folder ${c.dataDir}`,
        "does not exist yet: start-up creates it (mode 0700)",
      );
    return check(
      "data-folder",
      "warn",
      `data folder ${c.dataDir}`,
      `readable by others; start-up will ${steps.map((s) => s.text).join(", ")}`,
      "nothing: isched makes them private when it starts (or chmod them now)",
    );
  } catch (e) {
    if (e instanceof ConfigError) return check("data-folder", "fail", `data folder ${c.dataDir}`, e.message);
    throw e;
  }
}

interface DatabaseLook {
  checks: Check[];
  policies: readonly PeerPolicyRow[];
}

function databaseChecks(c: ServeConfig): DatabaseLook {
  const path = databasePathOf(c.dataDir);
  const subject = `database ${path}`;
  if (!existsSync(path))
    return {
      checks: [
        check(
          "database",
          "pass",
          subject,
          `none yet: start-up creates it${c.dkimKeyFile ? "" : " and a DKIM key for each domain (publish the records it prints)"}`,
        ),
      ],
      policies: [],
    };
  let db: Database;
  try {
    db = openReadOnly(path);
  } catch (e) {
    if (e instanceof StoreError)
      return { checks: [check("database", "fail", subject, e.message)], policies: [] };
    throw e;
  }
  try {
    const facts: DatabaseFacts = factsOf(db, path);
    const known = MIGRATIONS.length;
    const holder = gatewayHolding(c.dataDir);
    const inUse = holder ? `; in use by isched pid ${holder.pid}` : "";
    const counts = `${facts.messages} messages, ${facts.keys} DKIM keys${inUse}`;
    if (facts.schema > known)
      return {
        checks: [check("database", "fail", subject, newerSchema(db, facts.schema, known).message)],
        policies: [],
      };
    const checks: Check[] = [
      facts.schema < known
        ? check(
            "database",
            "warn",
            subject,
            `schema ${facts.schema}, start-up migrates it to ${known} (copying it first): ${counts}`,
            "nothing, or 'isched backup FILE' first to keep your own copy",
          )
        : check("database", "pass", subject, `schema ${facts.schema}, ${counts}`),
    ];
    if (facts.schema === known && !c.dkimKeyFile) checks.push(...keyChecks(db, c));
    return { checks, policies: facts.schema === known ? allPeerPolicies(db) : [] };
  } finally {
    db.close();
  }
}

function keyChecks(db: Database, c: ServeConfig): Check[] {
  return c.domains.map((domain) => {
    const active = keysOfDomain(db, domain).find((k) => k.state === "active");
    return active
      ? check(
          "dkim-key",
          "pass",
          `DKIM key of ${domain}`,
          `selector ${active.selector} signs (${active.algorithm})`,
        )
      : check(
          "dkim-key",
          "warn",
          `DKIM key of ${domain}`,
          "none yet: start-up makes one",
          "publish the TXT and SRV records that start-up prints ('isched doctor' checks them)",
        );
  });
}

export const validateCommand = defineCommand({
  name: "validate",
  summary: "Check a serve configuration (flags, ISCHED_* variables, files, keys, addresses) without starting",
  usage: "validate [serve's flags ...] [--json]",
  description: [
    "Takes the flags of 'isched serve' (and their ISCHED_* variables), prints the effective",
    "configuration (every flag, where its value came from, secrets redacted) and checks what serve",
    "checks before it starts: every flag and file, conflicts, the addresses, the data folder, the",
    "database and its keys. Changes nothing. Exits 0 when serve would start (warnings included), 1",
    "when it would not.",
  ].join("\n"),
  flags: { ...serveFlags, json: flag.bool({ help: "print the configuration and the checks as JSON" }) },
  positionals: { min: 0, max: 0 },
  async run(parsed) {
    const configuration = effectiveLines(serveFlags, parsed);
    const checks: Check[] = (parsed.strayVariables ?? []).map((v) =>
      check(
        "environment",
        "warn",
        v.name,
        "set, but no flag's variable: ignored",
        v.hint ? `did you mean ${v.hint}?` : "remove it",
      ),
    );
    let config: ServeConfig | undefined;
    try {
      config = serveSettings(parsed).config;
      checks.unshift(
        check("configuration", "pass", "configuration", "every flag, variable and file it names is valid"),
      );
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      checks.unshift(check("configuration", "fail", "configuration", e.message));
    }
    if (config) {
      checks.push(await addressesCheck(config), dataFolderCheck(config));
      const look = databaseChecks(config);
      checks.push(...look.checks);
      const risky = [
        ...configurationWarnings(config),
        ...riskySettings({
          trust: config.trust,
          consolePolicies: look.policies,
          tls: config.tls !== undefined || config.acme !== undefined,
          trustedProxies: config.trustedProxies ?? [],
          domains: config.domains,
        }).map((r) => r.text),
      ];
      for (const text of risky) checks.push(check("setting", "warn", "setting", text));
    }
    if (parsed.flags.json) {
      process.stdout.write(`${JSON.stringify({ configuration, checks }, null, 2)}\n`);
    } else {
      process.stdout.write(
        `${formatEffective(configuration, "effective configuration (secrets redacted):")}\n\n`,
      );
      process.stdout.write(formatReport(checks));
    }
    return worst(checks) === "fail" ? 1 : 0;
  },
});
