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
});
