import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

const DESCRIPTION = `An OpenAI-compatible gateway that charges every call against hierarchical token
budgets (global → team → rolegroup → role → user) before it reaches the provider, and settles to
the provider's actual usage afterwards.

* **OpenAI API** (\`/v1/*\`): call it with the official SDKs; identity comes from the
  \`x-user-id\` (required), \`x-team-id\`, \`x-llm-rolegroup\` and \`x-role\` headers.
* **Admin API** (\`/config/*\`, \`/buckets/*\`): budgets and bucket levels; protected by
  \`Authorization: Bearer <ADMIN_TOKEN>\` when the gateway has one — use *Authorize* above.

Every error is \`{"error": {"message", "type", "code", "param"}}\`.`;

/** Swagger UI at `/docs`, the OpenAPI document at `/docs-json`. */
export function setUpOpenApi(app: NestFastifyApplication, version: string): void {
  const config = new DocumentBuilder()
    .setTitle('TokenGuard')
    .setDescription(DESCRIPTION)
    .setVersion(version)
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'The ADMIN_TOKEN configured on the gateway' },
      'admin',
    )
    .addTag('openai', 'OpenAI-compatible endpoints, charged against the caller’s budgets')
    .addTag('admin', 'Budgets and buckets')
    .addTag('status', 'Status and probes')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true, tryItOutEnabled: true },
  });
}
