/** How much of the refusal log (refused requests' metadata) any store keeps, oldest pruned first. */
export interface RefusalLimits {
  /** Refusals kept at most. */
  readonly maxCount: number;
  /** Bytes of refusal metadata kept at most (as metadataBytes counts them). */
  readonly maxBytes: number;
}

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = { maxCount: 10_000, maxBytes: 16 * 1024 * 1024 };
