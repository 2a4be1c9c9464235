/** The DNS layer: name syntax, the resolver that keeps TXT string boundaries and TTLs, resolv.conf. */
export {
  type AddressRecord,
  createResolver,
  DEFAULT_NEGATIVE_TTL,
  type DnsAnswer,
  type DnsResolver,
  type ResolverOptions,
  type SrvRecord,
  type TxtRecord,
} from "./client.ts";
export { isDomainName, isSameOrSubdomain, normalizeDomain } from "./names.ts";
export { DEFAULT_NAME_SERVER, loadResolvConf, parseResolvConf } from "./resolv-conf.ts";
