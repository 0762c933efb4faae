/** One server-sent event, its data parsed as JSON (null when the event has an empty `data:` field). */
export interface ServerSentEvent {
  event: string;
  data: unknown;
}

/**
 * Reads a `text/event-stream` response as a plain client does (the raw stream, no SSE library): events, comment lines
 * (heartbeats) and the end of the stream, for tests to wait on with `until`.
 */
export class EventStreamReader {
  readonly events: ServerSentEvent[] = [];
  /** Blocks made only of `:` comment lines: graphql-sse's first flush and the heartbeats. */
  comments = 0;
  done = false;
  failed: unknown;
  /** Everything received, for assertions on what must never be sent. */
  raw = '';

  constructor(response: Response) {
    void this.read(response);
  }

  get nexts(): unknown[] {
    return this.events.filter((e) => e.event === 'next').map((e) => e.data);
  }

  get completed(): boolean {
    return this.events.some((e) => e.event === 'complete');
  }

  private async read(response: Response): Promise<void> {
    const body = response.body;
    if (!body) {
      this.done = true;
      return;
    }
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        this.raw += text;
        buffer += text;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.block(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      this.failed = e;
    }
    this.done = true;
  }

  private block(block: string): void {
    const lines = block.split('\n');
    if (lines.every((line) => line.startsWith(':'))) {
      this.comments++;
      return;
    }
    let event = 'message';
    const data: string[] = [];
    for (const line of lines) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trim());
    }
    const text = data.join('\n');
    this.events.push({ event, data: text === '' ? null : JSON.parse(text) });
  }
}

/** The URL Hive Gateway's subgraph executor (@graphql-tools/executor-http `prepareGETUrl`) builds for a subscription. */
export function hiveGetUrl(endpoint: string, request: { query: string; variables?: Record<string, unknown>; operationName?: string; extensions?: Record<string, unknown> }): string {
  const url = new URL(endpoint);
  url.searchParams.set('query', request.query);
  if (request.variables && Object.keys(request.variables).length > 0) url.searchParams.set('variables', JSON.stringify(request.variables));
  if (request.operationName) url.searchParams.set('operationName', request.operationName);
  if (request.extensions) url.searchParams.set('extensions', JSON.stringify(request.extensions));
  return url.toString();
}
