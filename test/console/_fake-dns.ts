/**
 * A DNS server whose TXT records a test changes while it runs (dnsmasq reads its records once, at
 * start): UDP and TCP on 127.0.0.1, NXDOMAIN for unknown names, so a test can "publish" a key the
 * console generated and watch the check find it.
 */
import * as packet from "dns-packet";
import { serveDnsAnswers } from "../support/dns-sockets.ts";

export interface FakeDns {
  readonly server: { host: string; port: number };
  /** Sets the TXT records of a name (each record a list of strings); [] removes it. */
  setTxt(name: string, records: string[][]): void;
  stop(): Promise<void>;
}

export async function startFakeDns(): Promise<FakeDns> {
  const txt = new Map<string, string[][]>();
  const answer = (query: Buffer): Buffer => {
    const q = packet.decode(query);
    const question = q.questions?.[0];
    const name = (question?.name ?? "").toLowerCase().replace(/\.$/, "");
    const records = txt.get(name);
    const answers =
      question?.type === "TXT" && records
        ? records.map((strings) => ({
            type: "TXT" as const,
            name: question.name,
            ttl: 60,
            class: "IN" as const,
            data: strings,
          }))
        : [];
    return packet.encode({
      type: "response",
      id: q.id,
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (records || answers.length ? 0 : 3),
      questions: q.questions,
      answers,
    });
  };
  const sockets = await serveDnsAnswers(answer);
  const { port } = sockets;
  return {
    server: { host: "127.0.0.1", port },
    setTxt(name, records) {
      if (records.length === 0) txt.delete(name.toLowerCase());
      else txt.set(name.toLowerCase(), records);
    },
    stop: () => sockets.close(),
  };
}
