import { HttpStatus, type Type, ValidationPipe, type ValidationError } from '@nestjs/common';
import { instanceToPlain } from 'class-transformer';
import { toDtoInstance } from './dto-instance';
import { OpenAIException } from './openai-error';

/** Walks to the first failing leaf and names it the way OpenAI does (`messages[0].role`). */
export function firstValidationProblem(
  errors: readonly ValidationError[],
  parentPath = '',
): { param: string; message: string } | undefined {
  for (const error of errors) {
    const path = joinPath(parentPath, error.property);
    const messages = Object.values(error.constraints ?? {});
    if (messages.length > 0) {
      const message = messages[0].startsWith(error.property)
        ? messages[0].slice(error.property.length).trim()
        : messages[0];
      return { param: path, message: `Invalid '${path}': ${message}.` };
    }
    const nested = firstValidationProblem(error.children ?? [], path);
    if (nested) return nested;
  }
  return undefined;
}

function joinPath(parent: string, property: string): string {
  if (parent === '') return property;
  return /^\d+$/.test(property) ? `${parent}[${property}]` : `${parent}.${property}`;
}

export function validationException(errors: readonly ValidationError[]): OpenAIException {
  const problem = firstValidationProblem(errors) ?? { param: null, message: 'Invalid request.' };
  return new OpenAIException(HttpStatus.BAD_REQUEST, { ...problem, code: 'invalid_value' });
}

/** The same answer for a field checked outside class-validator: `Invalid '<param>': <why>.` */
export function invalidValueException(param: string, why: string): OpenAIException {
  return new OpenAIException(HttpStatus.BAD_REQUEST, {
    message: `Invalid '${param}': ${why}.`,
    param,
    code: 'invalid_value',
  });
}

/** Validates DTO parameters strictly (admin API) and answers in the OpenAI error shape. */
export function createOpenAIValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    // Bounded work on whatever a client sends (see toDtoInstance).
    transformerPackage: {
      plainToInstance: <T>(type: Type<T>, plain: unknown) =>
        toDtoInstance(type as Type<object>, plain) as T,
      classToPlain: (value) => instanceToPlain(value),
    },
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    exceptionFactory: (errors) => validationException(errors),
  });
}
