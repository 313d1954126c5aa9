import { ValidateIf } from 'class-validator';

/**
 * The field may be left out of a body; when present it is validated, null included.
 * IsOptional() lets null through, and the admin handlers would take it for a value (a key
 * expiring at once, a refill rate the store refuses with a 500).
 */
export const IsOmittable = (): PropertyDecorator =>
  ValidateIf((_dto: object, value: unknown) => value !== undefined);
