/**
 * A reserve() reused the id of a reservation that is still open. Two live reservations under
 * one id would make settle() ambiguous, so the second one is refused and nothing is charged.
 * Once the first is settled or has expired the id is free again.
 */
export class DuplicateReservationError extends Error {
  override readonly name = 'DuplicateReservationError';

  constructor(readonly reservationId: string) {
    super(`reservation id "${reservationId}" is already open`);
  }
}
