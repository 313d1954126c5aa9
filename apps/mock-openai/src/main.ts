import { MOCK_CLI_HELP, parseMockCli } from './mock-cli';
import { startMockOpenAI } from './mock-server';

const SHUTDOWN_GRACE_MS = 5000;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(MOCK_CLI_HELP);
    return;
  }
  const options = parseMockCli(argv, process.env);
  const server = await startMockOpenAI(options);
  console.log(`mock-openai listening on ${server.url} (OpenAI base URL ${server.url}/v1)`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`mock-openai: ${signal}, shutting down`);
    // In-flight requests get a few seconds; a stuck stream must not block the exit.
    const timer = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS);
    timer.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('mock-openai: shutdown failed', err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
});
