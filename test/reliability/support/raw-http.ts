import net from 'node:net';

export interface RawRequest {
  method: string;
  /** The request target exactly as sent (no encoding is applied). */
  target: string;
  /** Header lines in order; repeated names are sent repeatedly. */
  headers: Array<[string, string]>;
  body?: Buffer;
}

export interface RawAnswer {
  /** 0 when nothing came back before the connection closed or the time ran out. */
  status: number;
  head: string;
  body: string;
  ms: number;
  timedOut: boolean;
}

/**
 * Sends one HTTP/1.1 request byte for byte over a fresh connection (so
 * nothing a client library would refuse or normalise is refused or
 * normalised), with `Connection: close`, and reads the answer to the end.
 */
export function rawRequest(port: number, request: RawRequest, timeoutMs = 10_000): Promise<RawAnswer> {
  const started = performance.now();
  const body = request.body ?? Buffer.alloc(0);
  const lines = [`${request.method} ${request.target} HTTP/1.1`, ...request.headers.map(([name, value]) => `${name}: ${value}`)];
  if (!request.headers.some(([name]) => name.toLowerCase() === 'host')) lines.push(`Host: 127.0.0.1:${port}`);
  if (body.length > 0 || request.method === 'POST') lines.push(`Content-Length: ${body.length}`);
  lines.push('Connection: close', '', '');
  const head = Buffer.from(lines.join('\r\n'), 'latin1');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(Buffer.concat([head, body]));
    });
    socket.setTimeout(timeoutMs, () => {
      timedOut = true;
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined); // a reset is read as whatever arrived before it
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const answerHead = split === -1 ? text : text.slice(0, split);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answerHead)?.[1] ?? 0);
      resolve({ status, head: answerHead, body: split === -1 ? '' : text.slice(split + 4), ms: performance.now() - started, timedOut });
    });
  });
}
