import { SetMetadata, type Type } from '@nestjs/common';
import type { RouteLabel } from '@tokenguard/common';
import type { TokenEstimate, TokenEstimatorService } from '@tokenguard/estimator';

/** How one endpoint is charged: what its body must look like and what it may cost. */
export interface ChargeProfile<TBody extends object = object> {
  /** Route label for logs and metrics (`chat.completions`). */
  readonly name: RouteLabel;
  /** class-validator DTO checked before anything is reserved; unknown fields are allowed. */
  readonly dto: Type<TBody>;
  /** Extra checks class-validator cannot express; throw an OpenAIException to refuse. */
  readonly check?: (body: TBody) => void;
  readonly estimate: (body: TBody, estimator: TokenEstimatorService) => TokenEstimate;
}

export const CHARGE_PROFILE = Symbol('tokenguard:charge-profile');

/** Marks a handler as charged: LimiterGuard validates, estimates and reserves before it runs. */
export const RateLimited = <TBody extends object>(profile: ChargeProfile<TBody>) =>
  SetMetadata(CHARGE_PROFILE, profile);
