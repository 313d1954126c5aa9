import 'reflect-metadata';
import { Type } from 'class-transformer';
import {
  IsArray,
  IsInt,
  IsOptional,
  IsString,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { toDtoInstance } from './dto-instance';
import { OpenAIException } from './openai-error';

class Part {
  @IsString()
  kind!: string;
}

class Body {
  @IsString()
  name!: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  limit?: number;

  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => Part)
  parts!: Part[];

  @IsOptional()
  @ValidateNested()
  @Type(() => Part)
  main?: Part;
}

describe('toDtoInstance', () => {
  it('builds the DTO and its nested DTOs, with class-transformer conversions on scalars', () => {
    const body = toDtoInstance(Body, {
      name: 'x',
      limit: '5',
      parts: [{ kind: 'a' }, { kind: 'b' }],
      main: { kind: 'c' },
      extra: { kept: [1, 2] },
    });
    expect(body).toBeInstanceOf(Body);
    expect(body.limit).toBe(5);
    expect(body.parts[0]).toBeInstanceOf(Part);
    expect(body.main).toBeInstanceOf(Part);
    expect((body as unknown as { extra: unknown }).extra).toEqual({ kept: [1, 2] });
    expect(validateSync(body)).toEqual([]);
  });

  it('leaves values of the wrong shape for validation to refuse', () => {
    const body = toDtoInstance(Body, { name: ['not', 'a', 'string'], parts: [7, { kind: 1 }] });
    const errors = validateSync(body);
    expect(errors.map((e) => e.property).sort()).toEqual(['name', 'parts']);
    expect(toDtoInstance(Body, [1, 2])).toEqual([1, 2]);
    expect(toDtoInstance(Body, 'text')).toBe('text');
  });

  it('does not walk large values (class-transformer visits each of them)', () => {
    const ids = Array.from({ length: 1_000_000 }, (_, i) => i);
    const started = performance.now();
    const body = toDtoInstance(Body, { name: ids, parts: [], extra: ids });
    expect(performance.now() - started).toBeLessThan(200);
    expect(body.name).toBe(ids);
  });

  it('never lets a key reach the prototype', () => {
    const plain = JSON.parse('{"name":"x","parts":[],"__proto__":{"polluted":true}}') as object;
    const body = toDtoInstance(Body, plain);
    expect(Object.getPrototypeOf(body)).toBe(Body.prototype);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('refuses a constructor key where it builds a DTO, which would switch validation off', () => {
    const codeAndParam = (plain: unknown) => {
      try {
        toDtoInstance(Body, plain);
      } catch (error) {
        if (!(error instanceof OpenAIException)) throw error;
        return [error.getStatus(), error.body.error.code, error.body.error.param];
      }
      return undefined;
    };
    for (const value of ['x', 1, null, {}, { kind: 'a' }, []]) {
      expect(codeAndParam({ name: 'x', parts: [], constructor: value })).toEqual([
        400,
        'reserved_key',
        'constructor',
      ]);
    }
    expect(codeAndParam({ name: 'x', parts: [], main: { kind: 'a', constructor: {} } })).toEqual([
      400,
      'reserved_key',
      'main.constructor',
    ]);
    expect(codeAndParam({ name: 'x', parts: [{ kind: 'a' }, { constructor: 'b' }] })).toEqual([
      400,
      'reserved_key',
      'parts[1].constructor',
    ]);
  });

  it('keeps constructor and prototype keys inside free-form values as they came', () => {
    const schema = JSON.parse(
      '{"type":"object","properties":{"constructor":{"type":"string"},"prototype":{"type":"object"}}}',
    ) as object;
    const body = toDtoInstance(Body, {
      name: 'x',
      parts: [],
      prototype: 'top-level prototype is only data',
      extra: [{ parameters: schema }],
    });
    expect(body).toBeInstanceOf(Body);
    expect(body.constructor).toBe(Body);
    expect((body as unknown as { extra: unknown[] }).extra[0]).toEqual({ parameters: schema });
    expect(validateSync(body)).toEqual([]);
    // With its rules still found: a bad field is still refused.
    const bad = toDtoInstance(Body, { name: 7, parts: [], extra: [{ parameters: schema }] });
    expect(validateSync(bad).map((e) => e.property)).toEqual(['name']);
  });
});
