import { Writable } from 'node:stream';

/**
 * Collects a gateway's JSON log lines (pass it as `destination`). nestjs-pino keeps one logger
 * per process: the first gateway of a test file decides where lines go.
 */
export class LogSink extends Writable {
  readonly raw: string[] = [];

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.raw.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((line) => line.trim() !== ''),
    );
    done();
  }

  get lines(): Array<Record<string, unknown>> {
    return this.raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** The first line matching `predicate`, waiting up to 1 s for it. */
  async find(
    predicate: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown> | undefined> {
    for (let i = 0; i < 50; i++) {
      const line = this.lines.find(predicate);
      if (line) return line;
      await new Promise((r) => setTimeout(r, 20));
    }
    return undefined;
  }
}
