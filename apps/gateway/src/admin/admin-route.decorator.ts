import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';

export const ADMIN_ROUTE = Symbol('tokenguard:admin-route');

/** Marks a controller (or handler) as part of the admin API, behind ADMIN_TOKEN. */
export const AdminRoute = () =>
  applyDecorators(
    SetMetadata(ADMIN_ROUTE, true),
    ApiBearerAuth('admin'),
    ApiUnauthorizedResponse({ description: 'No admin token', type: OpenAIErrorResponse }),
    ApiForbiddenResponse({ description: 'Wrong admin token', type: OpenAIErrorResponse }),
  );
