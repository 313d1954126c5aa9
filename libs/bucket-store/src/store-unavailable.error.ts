/**
 * The backing engine did not answer: connection refused or lost, command timeout, cluster
 * down, failover in progress, or an unexpected error reply. The operation may or may not
 * have taken effect (a reserve whose reply was lost stays charged until its reservation
 * expires and refill pays it back). Input errors (RangeError, TypeError) and
 * DuplicateReservationError are never wrapped in this.
 */
export class BucketStoreUnavailableError extends Error {
  override readonly name = 'BucketStoreUnavailableError';

  constructor(
    readonly backend: string,
    readonly operation: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`${backend} bucket store unavailable during ${operation}: ${detail}`, { cause });
  }
}
