/**
 * Keys and DNS: our keys and every record to publish, the zone file, the live check, and rotation
 * (generate a pending key, activate it once a check shows it published, retire the old one).
 */
import { t } from "elysia";
import { isDomainName, normalizeDomain } from "../dns/names.ts";
import { DEFAULT_OVERLAP_MS } from "../keys/key-rotation.ts";
import { API_HEADERS, json, optionalOrNull, RequestError, type Route, route } from "./http.ts";
import type { KeysService } from "./keys-service.ts";

export interface KeyRouteOptions {
  keys: KeysService;
  log: { log(level: "info", message: string, fields?: Record<string, string>): void };
}

const NOT_HOSTED = "domain must be one of the hosted domains";

function domainOf(raw: string): string {
  if (!isDomainName(raw)) throw new RequestError(400, NOT_HOSTED);
  return normalizeDomain(raw);
}

function idParam(raw: string): number {
  if (!/^\d+$/.test(raw)) throw new RequestError(400, `"${raw}" is not a key id`);
  return Number(raw);
}

export function keyRoutes(o: KeyRouteOptions): Route[] {
  const k = o.keys;
  return [
    route({
      method: "GET",
      path: "/keys",
      access: "read",
      summary: "our DKIM keys per domain, each with its latest check, and every DNS record to publish",
      async handle() {
        const endpoint = await k.publicEndpoint();
        return json(200, {
          publicEndpoint: { url: endpoint.url, fromSetting: endpoint.fromSetting },
          defaultOverlapDays: DEFAULT_OVERLAP_MS / 86_400_000,
          domains: await k.all(),
        });
      },
    }),
    route({
      method: "GET",
      path: "/keys/zone",
      access: "read",
      summary: "a zone-file fragment with a domain's records: ?domain=",
      query: t.Object({ domain: t.String({ error: NOT_HOSTED }) }),
      async handle({ query }) {
        const domain = domainOf(query.domain);
        return new Response(await k.zone(domain), {
          headers: {
            ...API_HEADERS,
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": `attachment; filename="isched-${domain}.zone"`,
          },
        });
      },
    }),
    route({
      method: "PUT",
      path: "/keys/endpoint",
      access: "change",
      summary: "where peers reach us, for the SRV record: {url: https://HOST[:PORT]/PATH}",
      body: { schema: t.Object({ url: t.String() }) },
      async handle({ body }) {
        await k.setPublicEndpoint(body.url.trim());
        return json(200, { publicEndpoint: { url: (await k.publicEndpoint()).url, fromSetting: true } });
      },
    }),
    route({
      method: "POST",
      path: "/keys/check",
      access: "change",
      summary:
        "check now what DNS and /.well-known/domainkey serve: {domain?, selector?}; answers the checks and the domains as GET /keys does",
      body: {
        schema: t.Object({
          domain: t.Optional(t.String()),
          selector: optionalOrNull(t.String(), "selector must be a string"),
        }),
      },
      async handle({ body }) {
        const domain = body.domain === undefined ? undefined : domainOf(body.domain);
        const selector = body.selector ?? undefined;
        if (selector !== undefined) {
          if (!domain) throw new RequestError(400, "a selector needs its domain");
          return json(200, { checks: [await k.check(domain, selector)] });
        }
        const checks = await k.checkAll(domain);
        return json(200, { checks, domains: domain ? [await k.domain(domain)] : await k.all() });
      },
    }),
    route({
      method: "POST",
      path: "/keys",
      access: "change",
      summary: "make a new pending key (published, not signing yet): {domain, type: rsa|ed25519}",
      body: {
        schema: t.Object({
          domain: t.String(),
          type: t.Optional(
            t.Union([t.Literal("rsa"), t.Literal("ed25519"), t.Null()], {
              invalid: "type must be rsa or ed25519",
            }),
          ),
        }),
      },
      async handle({ body, caller }) {
        const domain = domainOf(body.domain);
        const key = await k.rotation.generate(domain, body.type ?? "rsa");
        o.log.log("info", "console: new pending DKIM key", {
          domain,
          selector: key.selector,
          via: caller?.via ?? "",
        });
        return json(201, { key, domain: await k.domain(domain) });
      },
    }),
    route({
      method: "POST",
      path: "/keys/:id/activate",
      access: "change",
      summary: "sign with a pending key once a check finds it published: {overlapDays?: 1..90}",
      body: {
        schema: t.Object({
          overlapDays: optionalOrNull(
            t.Number({ minimum: 1, maximum: 90 }),
            "overlapDays must be a number from 1 to 90",
          ),
        }),
      },
      async handle({ params, body, caller }) {
        const id = idParam(params.id!);
        const days = body.overlapDays ?? DEFAULT_OVERLAP_MS / 86_400_000;
        const key = await k.rotation.byId(id);
        const check = await k.check(key.domain, key.selector);
        const result = await k.rotation.activate(id, check, Math.round(days * 86_400_000));
        o.log.log("info", "console: DKIM key activated", {
          domain: key.domain,
          selector: key.selector,
          retiring: result.retiring.join(","),
          via: caller?.via ?? "",
        });
        return json(200, { ...result, check, domain: await k.domain(key.domain) });
      },
    }),
    route({
      method: "POST",
      path: "/keys/:id/retire",
      access: "change",
      summary: "retire a retiring key now, or discard a pending one",
      async handle({ params, caller }) {
        const key = await k.rotation.retire(idParam(params.id!));
        o.log.log("info", "console: DKIM key retired", {
          domain: key.domain,
          selector: key.selector,
          via: caller?.via ?? "",
        });
        return json(200, { key, domain: await k.domain(key.domain) });
      },
    }),
  ];
}
