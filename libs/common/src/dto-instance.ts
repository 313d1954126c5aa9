import type { Type } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, ValidationTypes } from 'class-validator';
import { OpenAIException } from './openai-error';

/** Per DTO class: the properties validated as nested DTOs, and the class of each. */
const nestedTypesOf = new WeakMap<Type<object>, ReadonlyMap<string, Type<object>>>();

/**
 * The DTO instance class-validator checks, built from parsed JSON without walking all of it.
 *
 * class-transformer's plainToInstance visits every value of its input, however deep and long:
 * a body of half a million token ids took two seconds of blocked event loop, and any nested
 * object with a `constructor` key threw. Here it only sees the primitive fields, where its
 * conversions apply (`@Type(() => Number)` on a query). Arrays and objects are kept as they
 * came, for the validators to judge, except the properties a DTO validates as nested DTOs
 * (`@ValidateNested` with `@Type`): those are built the same way, element by element.
 *
 * Free-form values (a tool's JSON schema, message parts) are never walked, so any key is just
 * data there. A `constructor` key on an object that becomes a DTO instance is refused (400
 * `reserved_key`): class-validator finds a DTO's rules through `instance.constructor`, so an
 * own `constructor` would switch its validation off.
 */
export function toDtoInstance<T extends object>(dto: Type<T>, plain: unknown): T {
  // Anything but an object is refused by validation: left as it is for it.
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) return plain as T;
  const scalars: Array<[string, unknown]> = [];
  const structured: Array<[string, object]> = [];
  for (const [key, value] of Object.entries(plain)) {
    refuseConstructorKey(key, '');
    if (value !== null && typeof value === 'object') structured.push([key, value as object]);
    else scalars.push([key, value]);
  }
  const instance = plainToInstance(dto, Object.fromEntries(scalars));
  return withStructured(instance, dto, structured, '');
}

/**
 * A nested DTO: its fields as they came, on an instance of its class. No conversion: the
 * nested DTOs of request bodies declare none, and there may be a great many of them.
 */
function toNestedInstance(type: Type<object>, plain: unknown, path: string): unknown {
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) return plain;
  const instance = Object.create(type.prototype as object) as object;
  const fields = Object.entries(plain);
  for (const [key] of fields) refuseConstructorKey(key, path);
  return withStructured(instance, type, fields, path);
}

function withStructured<T extends object>(
  instance: T,
  dto: Type<object>,
  fields: ReadonlyArray<readonly [string, unknown]>,
  path: string,
): T {
  const nested = nestedTypes(dto);
  for (const [key, value] of fields) {
    const type = nested.get(key);
    // The path is only built for nested DTOs (an error names it): most fields are not.
    const built = type === undefined ? value : nestedValue(type, value, joinPath(path, key));
    // Defined, not assigned: no key can reach the instance's prototype.
    Object.defineProperty(instance, key, {
      value: built,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return instance;
}

/** A field validated as a nested DTO (or an array of them), built element by element. */
function nestedValue(type: Type<object>, value: unknown, at: string): unknown {
  return Array.isArray(value)
    ? value.map((item: unknown, i) => toNestedInstance(type, item, `${at}[${i}]`))
    : toNestedInstance(type, value, at);
}

function refuseConstructorKey(key: string, path: string): void {
  if (key !== 'constructor') return;
  const param = joinPath(path, key);
  throw OpenAIException.badRequest(`The field '${param}' is not allowed.`, param, 'reserved_key');
}

const joinPath = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

function nestedTypes(dto: Type<object>): ReadonlyMap<string, Type<object>> {
  let types = nestedTypesOf.get(dto);
  if (types !== undefined) return types;
  const found = new Map<string, Type<object>>();
  for (const rule of getMetadataStorage().getTargetValidationMetadatas(dto, '', false, false)) {
    if (rule.type !== ValidationTypes.NESTED_VALIDATION || found.has(rule.propertyName)) continue;
    // Which class class-transformer's @Type builds for this property, asked on an empty value.
    const probe = (plainToInstance(dto, { [rule.propertyName]: {} }) as Record<string, unknown>)[
      rule.propertyName
    ];
    const type = (probe as object | undefined)?.constructor;
    if (typeof type === 'function' && type !== Object)
      found.set(rule.propertyName, type as Type<object>);
  }
  types = found;
  nestedTypesOf.set(dto, types);
  return types;
}
