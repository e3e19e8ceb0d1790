/**
 * Uploads to ipernity (`upload.file`): the multipart/form-data body, streamed
 * over node:http with backpressure, and the polling of `upload.checkTickets`.
 * `IpernityClient.upload` and `IpernityClient.waitForTickets` sign, check
 * and read the answers; this file only moves bytes and waits.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { METHODS } from './methods';
import { UpstreamBadResponseError, UploadInvalidError, UploadPendingError, UploadSourceError, type TicketResult } from './errors';

type Json = Record<string, unknown>;

/** The file of an upload: its bytes (a Buffer, or a stream read once, in order) and how ipernity should name it. */
export interface UploadFile {
  /**
   * The bytes. A stream is read as it is sent, never held whole: a visitor's
   * request, a file, a parser's file part. It is destroyed if the upload fails.
   */
  stream: Readable | Buffer;
  /** The file's name as ipernity shows it (UTF-8; `"`, CR and LF are percent-encoded as browsers do). */
  fileName: string;
  /** Its MIME type (`image/jpeg`); `application/octet-stream` when absent. */
  contentType?: string;
  /**
   * A stream's exact length in bytes, when known: the request then carries a
   * `Content-Length` (else it is chunked), and a stream that gives another
   * number of bytes fails with `UploadSourceError`. A Buffer's is its length.
   */
  size?: number;
}

/** `upload.file`'s optional parameters (title, description, keywords, is_public, album_id, async, …), raw strings. */
export type UploadParams = Partial<Record<(typeof METHODS)['upload.file']['optional'][number], string>>;

/** `upload.file`'s answer: a ticket to wait for (`waitForTickets`) or, with `async: '0'`, the new document. */
export interface UploadAnswer {
  ticket?: string;
  docId?: string;
}

/** Per upload. */
export interface UploadOptions {
  /** Fail with `UpstreamTimeoutError` when no byte moved either way for this long (default: the client's `uploadIdleTimeoutMs`). */
  idleTimeoutMs?: number;
}

/** How `waitForTickets` waits. */
export interface WaitForTicketsOptions {
  /** When to give up (a `Date`, or milliseconds since the epoch): `UploadPendingError` when the next poll would come later. */
  deadline: Date | number;
  /** The shortest wait between two polls of a ticket, whatever its `eta` says (default 1000 ms). */
  minIntervalMs?: number;
}

/** Longest a stalled upload waits for its next byte, either way, when the client's options give no other. */
export const DEFAULT_UPLOAD_IDLE_TIMEOUT_MS = 30_000;
/** Tickets per `upload.checkTickets` call, as ipernity documents. */
export const MAX_TICKETS_PER_CHECK = 50;
const DEFAULT_MIN_INTERVAL_MS = 1000;
const MAX_ANSWER_BYTES = 1024 * 1024;
/** A Buffer source is written in views of this size. */
const SLICE_BYTES = 64 * 1024;

/** What a multipart POST brought back. */
export interface MultipartAnswer {
  status: number;
  text: string;
  retryAfter?: string;
}

/** No byte moved for `idleMs` either way; the request was destroyed. */
export class IdleTimeoutError extends Error {
  override readonly name = 'IdleTimeoutError';
  constructor(readonly idleMs: number) {
    super(`no byte moved for ${idleMs} ms`);
  }
}

/** A name or file name inside a part header, as browsers write them (WHATWG form encoding). */
function quoted(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A MIME type safe for a part header; anything odd becomes `application/octet-stream`. */
function mimeType(value: string | undefined): string {
  return value && /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(?:\s*;[\x20-\x7e]*)?$/.test(value) ? value : 'application/octet-stream';
}

/** The bytes around the file: every field as a part, then the file part's header (`head`); the closing delimiter (`tail`). */
export interface MultipartFrame {
  boundary: string;
  head: Buffer;
  tail: Buffer;
}

/** The multipart frame for `fields` (in the order given, all before the file) and the file part named `file`. */
export function multipartFrame(fields: Readonly<Record<string, string>>, file: Pick<UploadFile, 'fileName' | 'contentType'>): MultipartFrame {
  const boundary = `----ipernity-connect-${randomBytes(16).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(name)}"\r\n\r\n${value}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted(file.fileName)}"\r\nContent-Type: ${mimeType(file.contentType)}\r\n\r\n`;
  return { boundary, head: Buffer.from(head, 'utf8'), tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'ascii') };
}

/** A Buffer as a stream of views (no copies), so that the socket's backpressure and the idle timer see it move. */
function slices(bytes: Buffer): Readable {
  let at = 0;
  return new Readable({
    read() {
      const end = Math.min(bytes.length, at + SLICE_BYTES);
      this.push(end > at ? bytes.subarray(at, end) : null);
      at = end;
    },
  });
}

/**
 * One multipart POST of `frame` around the source, on a connection of its
 * own (a body that cannot be sent twice never meets a kept-alive socket the
 * server has just closed, and a long upload holds no socket of the calls'
 * pool). The source is read only as fast as the socket takes it: paused
 * whenever the request's buffer is full, resumed on `drain`. (It is read by
 * its `data` events: an async iterator reads a paused stream's whole buffer
 * into a new Buffer each time, a copy of every chunk.) Rejects with
 * `IdleTimeoutError` when nothing moved either way for `idleMs`,
 * `UploadSourceError` when the source failed, ended early or gave more than
 * `size` (the request is aborted), or the transport's error. On failure the
 * request and the source are destroyed.
 */
export function postMultipart(url: string, method: string, frame: MultipartFrame, source: Readable | Buffer, size: number | undefined, idleMs: number, signedHeaders: Readonly<Record<string, string>> = {}): Promise<MultipartAnswer> {
  return new Promise((resolve, reject) => {
    const transport = url.startsWith('https:') ? https : http;
    const headers: http.OutgoingHttpHeaders = { ...signedHeaders, 'content-type': `multipart/form-data; boundary=${frame.boundary}`, accept: 'application/json' };
    const expected = Buffer.isBuffer(source) ? source.length : size;
    // without a length node:http sends the body chunked
    if (expected !== undefined) headers['content-length'] = frame.head.length + expected + frame.tail.length;
    const input = Buffer.isBuffer(source) ? slices(source) : source;
    let settled = false;
    let sent = false;
    let read = 0;
    const timer = setTimeout(() => fail(new IdleTimeoutError(idleMs)), idleMs);
    const moved = (): void => {
      timer.refresh();
    };
    const stop = (): void => {
      outgoing.destroy();
      input.destroy();
    };
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop();
      reject(error);
    };
    const outgoing = transport.request(url, { method: 'POST', agent: false, headers }, (response) => {
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        moved();
        received += chunk.length;
        if (received > MAX_ANSWER_BYTES) {
          fail(new UpstreamBadResponseError(method, `larger than ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // an answer before the whole body went (an early refusal): stop sending
        if (!sent) stop();
        const retryAfter = response.headers['retry-after'];
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(retryAfter === undefined ? {} : { retryAfter }) });
      });
      response.on('error', fail);
    });
    outgoing.on('error', fail);
    outgoing.on('finish', () => {
      sent = true;
    });
    outgoing.on('drain', () => {
      moved();
      if (!settled) input.resume();
    });
    input.on('data', (chunk: Buffer | string) => {
      if (settled) return;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      read += bytes.length;
      if (expected !== undefined && read > expected) {
        fail(new UploadSourceError(method, `more than the ${expected} bytes announced`));
        return;
      }
      moved();
      if (!outgoing.write(bytes)) input.pause();
    });
    input.on('end', () => {
      if (settled) return;
      if (expected !== undefined && read !== expected) fail(new UploadSourceError(method, `${read} bytes where ${expected} were announced`));
      else outgoing.end(frame.tail);
    });
    input.on('error', (error) => fail(new UploadSourceError(method, 'the stream failed', { cause: error })));
    input.on('close', () => {
      if (!input.readableEnded) fail(new UploadSourceError(method, 'the stream closed before its end'));
    });
    outgoing.write(frame.head);
  });
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** `upload.file`'s answer: `{"ticket":"…"}`, with `doc_id` when it waited for processing (`async=0`). */
export function readUploadAnswer(method: string, answer: Json): UploadAnswer {
  const ticket = text(answer.ticket) ?? (isObject(answer.ticket) ? text(answer.ticket.id) : undefined);
  const docId = text(answer.doc_id) ?? (isObject(answer.doc) ? text(answer.doc.doc_id) : undefined);
  if (!ticket && !docId) throw new UpstreamBadResponseError(method, 'neither a ticket nor a doc_id');
  return { ...(ticket ? { ticket } : {}), ...(docId ? { docId } : {}) };
}

/** One ticket as `upload.checkTickets` reports it. */
interface TicketState {
  done: boolean;
  invalid: boolean;
  docId?: string;
  /** Seconds until it should be done. */
  eta: number;
}

/** `upload.checkTickets`'s answer, by ticket: `{"tickets":{…,"eta","ticket":[{"id","done","invalid","doc_id","eta"}]}}`. */
function readTickets(answer: Json): Map<string, TicketState> {
  const container = answer.tickets;
  if (!isObject(container)) throw new UpstreamBadResponseError('upload.checkTickets', 'no "tickets" object');
  const overall = Number(text(container.eta) ?? 0);
  const list = Array.isArray(container.ticket) ? container.ticket : isObject(container.ticket) ? [container.ticket] : [];
  const states = new Map<string, TicketState>();
  for (const item of list) {
    if (!isObject(item)) continue;
    const id = text(item.id);
    if (!id) continue;
    const eta = Number(text(item.eta) ?? overall);
    const docId = text(item.doc_id);
    states.set(id, { done: text(item.done) === '1', invalid: text(item.invalid) === '1', ...(docId ? { docId } : {}), eta: Number.isFinite(eta) && eta > 0 ? eta : 0 });
  }
  return states;
}

/**
 * Polls `check` (one `upload.checkTickets` call for up to 50 tickets) until
 * every ticket is done or invalid. A ticket is asked about first at once,
 * then never before the `eta` its last answer gave (nor within
 * `minIntervalMs`); `UploadPendingError` when the next poll would pass the
 * deadline. Answers one result per ticket, in the order given.
 */
export async function pollTickets(check: (tickets: string[]) => Promise<Json>, tickets: readonly string[], options: WaitForTicketsOptions): Promise<TicketResult[]> {
  const deadline = typeof options.deadline === 'number' ? options.deadline : options.deadline.getTime();
  const minInterval = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
  const unique = [...new Set(tickets)];
  const dueAt = new Map(unique.map((ticket) => [ticket, Date.now()]));
  const results = new Map<string, TicketResult>();
  const inOrder = (): TicketResult[] => unique.flatMap((ticket) => results.get(ticket) ?? []);
  for (;;) {
    const pending = unique.filter((ticket) => !results.has(ticket));
    if (pending.length === 0) break;
    const next = Math.min(...pending.map((ticket) => dueAt.get(ticket) as number));
    if (next > deadline) throw new UploadPendingError(pending, inOrder());
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    const now = Date.now();
    const due = pending.filter((ticket) => (dueAt.get(ticket) as number) <= now);
    for (let start = 0; start < due.length; start += MAX_TICKETS_PER_CHECK) {
      const batch = due.slice(start, start + MAX_TICKETS_PER_CHECK);
      const states = readTickets(await check(batch));
      const answeredAt = Date.now();
      for (const ticket of batch) {
        const state = states.get(ticket);
        if (state?.invalid) results.set(ticket, { ticket, error: new UploadInvalidError(ticket) });
        else if (state?.done && state.docId) results.set(ticket, { ticket, docId: state.docId });
        else if (state?.done) throw new UpstreamBadResponseError('upload.checkTickets', 'a ticket done without a doc_id');
        // not done, or missing from the answer: ask again after its eta
        else dueAt.set(ticket, answeredAt + Math.max(minInterval, (state?.eta ?? 0) * 1000));
      }
    }
  }
  return tickets.map((ticket) => results.get(ticket) as TicketResult);
}
