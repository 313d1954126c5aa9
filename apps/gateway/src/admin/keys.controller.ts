import { Body, Controller, Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import {
  API_KEY_ID_PATTERN,
  type ApiKeyIdentity,
  type ApiKeyRecord,
  ApiKeyService,
  maskedApiKey,
} from '@tokenguard/auth';
import { OpenAIException } from '@tokenguard/common';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';
import { adminPrincipalOf } from './admin-auth.guard';
import { AdminAudit } from './admin-audit';
import { AdminRoute } from './admin-route.decorator';
import {
  ApiKeyDto,
  ApiKeyPageDto,
  CreateApiKeyDto,
  CreatedApiKeyDto,
  ListApiKeysQueryDto,
  SetApiKeyExpiryDto,
} from './dto/api-key.dto';

/**
 * API keys for AUTH_MODE=keys: each maps to a fixed identity (user, and optionally team,
 * rolegroup, role). Keys can be made before switching the mode on.
 */
@ApiTags('admin')
@AdminRoute()
@ApiBadRequestResponse({ description: 'Invalid input', type: OpenAIErrorResponse })
@ApiServiceUnavailableResponse({ description: 'The store is down', type: OpenAIErrorResponse })
@Controller('keys')
export class KeysController {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly admin: AdminAudit,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create an API key',
    description:
      'Returns the key once (only its SHA-256 is stored); clients send it as ' +
      '`Authorization: Bearer tg-...` (the OpenAI SDKs: `apiKey`).',
  })
  @ApiCreatedResponse({ type: CreatedApiKeyDto })
  async create(
    @Body() dto: CreateApiKeyDto,
    @Req() request: FastifyRequest,
  ): Promise<CreatedApiKeyDto> {
    const identity: ApiKeyIdentity = {
      user: dto.user,
      ...(dto.team === undefined ? {} : { team: dto.team }),
      ...(dto.rolegroup === undefined ? {} : { rolegroup: dto.rolegroup }),
      ...(dto.role === undefined ? {} : { role: dto.role }),
    };
    const { record, key } = await this.keys.create({
      identity,
      name: dto.name,
      expiresAt: expiryOf(dto),
      createdBy: adminPrincipalOf(request).tokenId,
    });
    this.admin.change(request, 'key_created', {
      key: record.id,
      identity,
      expiresAt: iso(record.expiresAt),
    });
    return { ...this.view(record), key };
  }

  @Get()
  @ApiOperation({ summary: 'List API keys', description: 'Never shows a key, only its id.' })
  @ApiOkResponse({ type: ApiKeyPageDto })
  async list(@Query() query: ListApiKeysQueryDto): Promise<ApiKeyPageDto> {
    const page = await this.keys.list(query.cursor, query.limit ?? 50);
    return { data: page.records.map((r) => this.view(r)), nextCursor: page.next };
  }

  @Get(':id')
  @ApiOperation({ summary: 'Read one API key' })
  @ApiParam({ name: 'id', example: 'lz8k2m1qa7x3' })
  @ApiOkResponse({ type: ApiKeyDto })
  @ApiNotFoundResponse({ description: 'No such key', type: OpenAIErrorResponse })
  async read(@Param('id') id: string): Promise<ApiKeyDto> {
    return this.view(found(await this.keys.get(keyId(id))));
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Revoke an API key',
    description:
      'For good: the key answers 401 from now on (on other instances within 5 s). ' +
      'Revoking twice keeps the first time.',
  })
  @ApiParam({ name: 'id', example: 'lz8k2m1qa7x3' })
  @ApiOkResponse({ type: ApiKeyDto })
  @ApiNotFoundResponse({ description: 'No such key', type: OpenAIErrorResponse })
  async revoke(@Param('id') id: string, @Req() request: FastifyRequest): Promise<ApiKeyDto> {
    const record = found(await this.keys.revoke(keyId(id)));
    this.admin.change(request, 'key_revoked', { key: record.id });
    return this.view(record);
  }

  @Post(':id/expire')
  @HttpCode(200)
  @ApiOperation({
    summary: "Set an API key's expiry",
    description:
      'expiresAt (an instant), ttlSeconds (from now; 0: at once), or never: true (no expiry).',
  })
  @ApiParam({ name: 'id', example: 'lz8k2m1qa7x3' })
  @ApiOkResponse({ type: ApiKeyDto })
  @ApiNotFoundResponse({ description: 'No such key', type: OpenAIErrorResponse })
  async expire(
    @Param('id') id: string,
    @Body() dto: SetApiKeyExpiryDto,
    @Req() request: FastifyRequest,
  ): Promise<ApiKeyDto> {
    const expiresAt = dto.never === true ? null : expiryOf(dto);
    if (dto.never === true && (dto.expiresAt !== undefined || dto.ttlSeconds !== undefined)) {
      throw OpenAIException.badRequest(
        'Give expiresAt, ttlSeconds or never, not several.',
        'never',
        'invalid_value',
      );
    }
    if (expiresAt === undefined && dto.never !== true) {
      throw OpenAIException.badRequest(
        'Give expiresAt, ttlSeconds or never: true.',
        'expiresAt',
        'invalid_value',
      );
    }
    const record = found(await this.keys.setExpiry(keyId(id), expiresAt ?? null));
    this.admin.change(request, 'key_expiry_set', {
      key: record.id,
      expiresAt: iso(record.expiresAt),
    });
    return this.view(record);
  }

  private view(record: ApiKeyRecord): ApiKeyDto {
    const { identity } = record;
    return {
      id: record.id,
      prefix: maskedApiKey(record.id),
      name: record.name,
      user: identity.user,
      team: identity.team ?? null,
      rolegroup: identity.rolegroup ?? null,
      role: identity.role ?? null,
      status: this.keys.status(record),
      createdAt: new Date(record.createdAt).toISOString(),
      createdBy: record.createdBy,
      expiresAt: iso(record.expiresAt),
      revokedAt: iso(record.revokedAt),
    };
  }
}

/** The expiry an expiresAt or ttlSeconds asks for; undefined when neither is given. */
function expiryOf(dto: { expiresAt?: string; ttlSeconds?: number }): number | undefined {
  if (dto.expiresAt !== undefined && dto.ttlSeconds !== undefined) {
    throw OpenAIException.badRequest(
      'Give expiresAt or ttlSeconds, not both.',
      'ttlSeconds',
      'invalid_value',
    );
  }
  if (dto.ttlSeconds !== undefined) return Date.now() + dto.ttlSeconds * 1000;
  if (dto.expiresAt !== undefined) return Date.parse(dto.expiresAt);
  return undefined;
}

function keyId(id: string): string {
  if (!API_KEY_ID_PATTERN.test(id)) {
    throw OpenAIException.badRequest('Invalid key id: 12 characters of 0-9 a-z.', 'id');
  }
  return id;
}

function found(record: ApiKeyRecord | undefined): ApiKeyRecord {
  if (record === undefined) {
    throw new OpenAIException(404, { message: 'No API key with this id.', code: 'key_not_found' });
  }
  return record;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
