/** Tools: "verify this request", the page's equivalent of `isched dkim verify`. */
import { t } from "elysia";
import { createNetworkKeyResolver } from "../dkim/network-key-resolver.ts";
import { keyRecordFromFile, type PrivateKeyEntry } from "../dkim/private-exchange-source.ts";
import { parseSignature } from "../dkim/signature.ts";
import type { DnsResolver } from "../dns/client.ts";
import { parseRawRequest } from "../http/raw-request.ts";
import { json, optionalOrNull, RequestError, type Route, route } from "./http.ts";
import { restoreLineEnds, verifySteps } from "./verify-steps.ts";

export interface ToolRouteOptions {
  dns: DnsResolver;
  peerKeys: readonly PrivateKeyEntry[];
  allowPrivatePeers: boolean;
  allowSha1: boolean;
  ca?: string;
  nowMs: () => number;
}

export function toolRoutes(o: ToolRouteOptions): Route[] {
  return [
    route({
      method: "POST",
      path: "/tools/verify",
      access: "change",
      summary: "verify a raw signed request step by step: {request, atMs?, publicKey?}",
      body: {
        schema: t.Object({
          request: t.String(),
          atMs: optionalOrNull(t.Number(), "atMs must be a time in ms"),
          publicKey: optionalOrNull(t.String(), "publicKey must be a string"),
        }),
      },
      async handle({ body }) {
        const text = body.request;
        if (text.trim() === "") throw new RequestError(400, "paste a raw HTTP request");
        const atMs = body.atMs ?? o.nowMs();
        const { bytes, restored } = restoreLineEnds(text);
        let peerKeys = o.peerKeys;
        const publicKey = body.publicKey?.trim();
        if (publicKey) {
          // The pasted key stands for whatever d= and s= the signature names, as `dkim verify --pub-key`.
          let sig: ReturnType<typeof parseSignature> | undefined;
          try {
            const value = parseRawRequest(bytes).fields.find(
              ([n]) => n.toLowerCase() === "dkim-signature",
            )?.[1];
            sig = value === undefined ? undefined : parseSignature(value, { allowSha1: o.allowSha1 });
          } catch {
            sig = undefined;
          }
          let record: string;
          try {
            record = keyRecordFromFile(publicKey);
          } catch (e) {
            throw new RequestError(400, `publicKey: ${(e as Error).message}`);
          }
          peerKeys = sig?.ok
            ? [
                {
                  domain: sig.signature.domain,
                  selector: sig.signature.selector,
                  record,
                  where: "the pasted key",
                },
              ]
            : [];
        }
        const keys = createNetworkKeyResolver({
          peerKeys,
          onlyPeerKeys: publicKey !== undefined && publicKey !== "",
          dns: o.dns,
          allowPrivatePeers: o.allowPrivatePeers,
          ca: o.ca,
          nowMs: () => atMs,
        });
        return json(200, await verifySteps(bytes, { keys, nowMs: atMs, allowSha1: o.allowSha1, restored }));
      },
    }),
  ];
}
