export * from './dto/chat-completion.dto';
export * from './openai-proxy.module';
export * from './openai-proxy.service';
export * from './upstream-errors';
export * from './usage';
