import fc from 'fast-check';
import { BucketPolicy, GLOBAL_SCOPE_ID, ScopeRef, BudgetScopeType } from './bucket-store.interface';
import { MemoryBucketStore } from './memory-bucket.store';
import { FakeClock } from './testing/fake-clock';

/**
 * Invariants over random operation sequences on an injected clock. Three scopes (global,
 * one team, one user) get random policies. Each request charges a random non-empty subset
 * of them.
 */

const SCOPES: readonly ScopeRef[] = [
  { type: 'global', id: GLOBAL_SCOPE_ID },
  { type: 'team', id: 'red' },
  { type: 'user', id: 'alice' },
];

type Op =
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'reserve'; readonly tokens: number; readonly mask: number }
  | { readonly kind: 'settle'; readonly pick: number; readonly actual: number }
  | { readonly kind: 'policy'; readonly scope: number; readonly patch: Partial<BucketPolicy> }
  | { readonly kind: 'sweep' };

const capacityArb = fc.oneof(
  fc.integer({ min: 0, max: 5_000 }),
  fc.integer({ min: 0, max: 5_000_000 }).map((m) => m / 1_000),
);
const rateArb = fc.oneof(fc.constant(0), fc.double({ min: 0, max: 50, noNaN: true }));
const policyArb: fc.Arbitrary<BucketPolicy> = fc.record({
  capacity: capacityArb,
  refillPerSec: rateArb,
});

const advanceArb = fc.oneof(
  fc.integer({ min: 0, max: 2_000 }),
  fc.double({ min: 0, max: 500, noNaN: true }),
);

const baseOps: fc.Arbitrary<Op>[] = [
  advanceArb.map((ms): Op => ({ kind: 'advance', ms })),
  fc
    .record({ tokens: fc.integer({ min: 0, max: 3_000 }), mask: fc.integer({ min: 1, max: 7 }) })
    .map((r): Op => ({ kind: 'reserve', ...r })),
  fc
    .record({ pick: fc.nat(), actual: fc.integer({ min: 0, max: 4_000 }) })
    .map((r): Op => ({ kind: 'settle', ...r })),
  fc.constant<Op>({ kind: 'sweep' }),
];

const policyOp: fc.Arbitrary<Op> = fc
  .record({
    scope: fc.integer({ min: 0, max: SCOPES.length - 1 }),
    patch: fc.record({ capacity: capacityArb, refillPerSec: rateArb }, { requiredKeys: [] }),
  })
  .map((r): Op => ({ kind: 'policy', ...r }));

function makeStore(policies: readonly BucketPolicy[], clock: FakeClock): MemoryBucketStore {
  const base: BucketPolicy = { capacity: 1, refillPerSec: 0 };
  const defaults: Record<BudgetScopeType, BucketPolicy> = {
    global: policies[0],
    team: policies[1],
    rolegroup: base,
    role: base,
    user: policies[2],
  };
  return new MemoryBucketStore({
    defaults,
    clock,
    sweepIntervalMs: 0,
    sweepBatchSize: 2,
    reservationTtlMs: 3_000,
  });
}

const scopesOf = (mask: number) => SCOPES.filter((_, i) => (mask & (1 << i)) !== 0);

describe('MemoryBucketStore properties', () => {
  it('never admits more than capacity + refill × elapsed, net of settlements', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(policyArb, { minLength: 3, maxLength: 3 }),
        fc.array(fc.oneof(...baseOps), { maxLength: 80 }),
        async (policies, ops) => {
          const clock = new FakeClock(5_000);
          const store = makeStore(policies, clock);
          const net = [0, 0, 0];
          const open: { id: string; mask: number }[] = [];
          let elapsed = 0;
          let n = 0;
          for (const op of ops) {
            if (op.kind === 'advance') {
              clock.advance(op.ms);
              elapsed += op.ms;
            } else if (op.kind === 'reserve') {
              const id = `r${n++}`;
              const result = await store.reserve({
                reservationId: id,
                scopes: scopesOf(op.mask),
                tokens: op.tokens,
              });
              if (!result.admitted) continue;
              open.push({ id, mask: op.mask });
              // Checked at each admission: a later extra charge is debt, not an admission.
              SCOPES.forEach((_, i) => {
                if ((op.mask & (1 << i)) === 0) return;
                net[i] += op.tokens;
                const { capacity, refillPerSec } = policies[i];
                // One milli-token of slack per operation covers the refill's rounding nudge.
                const bound = capacity + (refillPerSec * elapsed) / 1_000 + ops.length / 1_000;
                expect(net[i]).toBeLessThanOrEqual(bound);
              });
            } else if (op.kind === 'settle' && open.length > 0) {
              const { id, mask } = open.splice(op.pick % open.length, 1)[0];
              // Net of what settle actually reported: a refund frees tokens, an extra uses them.
              const { refunded } = await store.settle(id, op.actual);
              SCOPES.forEach((_, i) => {
                if (mask & (1 << i)) net[i] -= refunded;
              });
            } else if (op.kind === 'sweep') {
              store.sweep();
            }
          }
          await store.close();
        },
      ),
    );
  });

  it('settles each reservation at most once; a repeat changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(policyArb, { minLength: 3, maxLength: 3 }),
        fc.array(fc.oneof(...baseOps, policyOp), { maxLength: 60 }),
        async (policies, ops) => {
          const clock = new FakeClock(0);
          const store = makeStore(policies, clock);
          const issued: string[] = [];
          const settled = new Set<string>();
          const levels = () => Promise.all(SCOPES.map(async (s) => store.getBucket(s)));
          for (const op of ops) {
            if (op.kind === 'advance') clock.advance(op.ms);
            else if (op.kind === 'sweep') store.sweep();
            else if (op.kind === 'policy') await store.setPolicy(SCOPES[op.scope], op.patch);
            else if (op.kind === 'reserve') {
              const id = `r${issued.length}`;
              const scopes = scopesOf(op.mask);
              const result = await store.reserve({ reservationId: id, scopes, tokens: op.tokens });
              if (result.admitted) issued.push(id);
            } else if (issued.length > 0) {
              const id = issued[op.pick % issued.length];
              const first = await store.settle(id, op.actual);
              if (settled.has(id)) expect(first).toEqual({ applied: false, refunded: 0 });
              settled.add(id);
              const before = await levels();
              const again = await store.settle(id, op.actual);
              expect(again).toEqual({ applied: false, refunded: 0 });
              expect(await levels()).toEqual(before);
            }
          }
          await store.close();
        },
      ),
    );
  });

  it('never shows a level above capacity, nor a fractional milli-token', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(policyArb, { minLength: 3, maxLength: 3 }),
        fc.array(fc.oneof(...baseOps, policyOp), { maxLength: 80 }),
        async (policies, ops) => {
          const clock = new FakeClock(1e12);
          const store = makeStore(policies, clock);
          const issued: string[] = [];
          for (const op of ops) {
            if (op.kind === 'advance') clock.advance(op.ms);
            else if (op.kind === 'sweep') store.sweep();
            else if (op.kind === 'policy') await store.setPolicy(SCOPES[op.scope], op.patch);
            else if (op.kind === 'reserve') {
              const id = `r${issued.length}`;
              const result = await store.reserve({
                reservationId: id,
                scopes: scopesOf(op.mask),
                tokens: op.tokens,
              });
              if (result.admitted) {
                issued.push(id);
                for (const b of result.buckets) expect(b.tokens).toBeGreaterThanOrEqual(0);
              }
            } else if (issued.length > 0) {
              await store.settle(issued[op.pick % issued.length], op.actual);
            }
            for (const scope of SCOPES) {
              const bucket = await store.getBucket(scope);
              expect(bucket.tokens).toBeLessThanOrEqual(bucket.capacity);
              expect(
                Math.abs(bucket.tokens * 1_000 - Math.round(bucket.tokens * 1_000)),
              ).toBeLessThan(1e-6);
              if (bucket.tokens >= bucket.capacity) expect(bucket.msUntilFull).toBe(0);
            }
          }
          await store.close();
        },
      ),
    );
  });
});
