import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { Busboy, type BusboyFileStream, type BusboyHeaders, type BusboyInstance } from '@fastify/busboy';
import { ApiFailure, sendFailure, sendOk } from './common';
import type { Fault } from './faults';
import { imageFacts } from './images';
import type { SimulatedDoc } from './library';
import type { Handler, PhotoContext } from './photos';
import { admitRequest } from './rules';

type Json = Record<string, unknown>;

/** One upload being processed, or what it became. */
export interface Ticket {
  id: string;
  /** Whose upload it is: only their token (of the same application) sees the ticket. */
  userId: string;
  apiKey: string;
  /** When processing ends (`Date.now()` time). */
  readyAt: number;
  /** The bytes it holds until processed (counted against the upload limits). */
  pendingBytes: number;
  /** Set once processed: the new document's id, or invalid when the file is not an image. */
  docId?: string;
  invalid: boolean;
  settled: boolean;
  /** Resolves once processed. */
  processed: Promise<void>;
}

/** Tickets kept at most: the oldest are forgotten first (an upload still processing is still added when its time comes). */
const MAX_TICKETS = 10_000;
/** Tickets one `upload.checkTickets` takes, as ipernity documents. */
const MAX_CHECKED = 50;
/** With the `cutUpload` fault and a chunked body: bytes read before the connection is cut. */
const CUT_CHUNKED_AFTER = 64 * 1024;
/** An upload's text fields: at most this many, each at most this long. */
const MAX_FIELDS = 100;
const MAX_FIELD_BYTES = 64 * 1024;

/** The uploads being processed: each ticket is done (or invalid) `processingMs` after the upload. Bounded: old tickets are forgotten. */
export class Tickets {
  readonly #tickets = new Map<string, Ticket>();
  #next = 12_345_001;

  constructor(
    readonly processingMs: number,
    readonly capacity = MAX_TICKETS,
  ) {}

  /** Bytes held by uploads still processing. */
  get pendingBytes(): number {
    let total = 0;
    for (const ticket of this.#tickets.values()) total += ticket.pendingBytes;
    return total;
  }

  /** A new ticket; `process` runs when processing ends and answers the document's id, or undefined for a file that does not decode. */
  create(owner: { userId: string; apiKey: string }, bytes: number, process: () => string | undefined): Ticket {
    let settle = (): void => undefined;
    const ticket: Ticket = {
      id: String(this.#next++),
      ...owner,
      readyAt: Date.now() + this.processingMs,
      pendingBytes: bytes,
      invalid: false,
      settled: false,
      processed: new Promise<void>((resolve) => {
        settle = () => {
          if (ticket.settled) return;
          ticket.settled = true;
          ticket.pendingBytes = 0;
          const docId = process();
          if (docId === undefined) ticket.invalid = true;
          else ticket.docId = docId;
          resolve();
        };
      }),
    };
    setTimeout(settle, this.processingMs).unref();
    this.#tickets.set(ticket.id, ticket);
    for (const id of this.#tickets.keys()) {
      if (this.#tickets.size <= this.capacity) break;
      this.#tickets.delete(id);
    }
    return ticket;
  }

  /** The ticket when it is this user's (with this application's token); undefined otherwise. */
  find(id: string, userId: string, apiKey: string): Ticket | undefined {
    const ticket = this.#tickets.get(id);
    return ticket && ticket.userId === userId && ticket.apiKey === apiKey ? ticket : undefined;
  }
}

/** Seconds left until the ticket is processed, rounded up (ipernity's `eta`). */
function etaOf(ticket: Ticket, now: number): number {
  return ticket.settled ? 0 : Math.max(0, Math.ceil((ticket.readyAt - now) / 1000));
}

function flag(value: string | undefined): boolean | undefined {
  return value === undefined || value === '' ? undefined : value === '1';
}

/** The document's fields from `upload.file`'s parameters: title, description, keywords (as tags), is_public/is_friend/is_family, license. */
function docFields(params: Readonly<Record<string, string>>): Partial<Pick<SimulatedDoc, 'title' | 'description' | 'tags' | 'isPublic' | 'isFriend' | 'isFamily' | 'license'>> {
  const fields: ReturnType<typeof docFields> = {};
  if (params.title) fields.title = params.title;
  if (params.description) fields.description = params.description;
  const tags = (params.keywords ?? '').split(',').map((word) => word.trim()).filter(Boolean);
  if (tags.length) fields.tags = tags;
  const isPublic = flag(params.is_public);
  if (isPublic !== undefined) fields.isPublic = isPublic;
  const isFriend = flag(params.is_friend);
  if (isFriend !== undefined) fields.isFriend = isFriend;
  const isFamily = flag(params.is_family);
  if (isFamily !== undefined) fields.isFamily = isFamily;
  if (params.license && /^[0-9]{1,2}$/.test(params.license)) fields.license = Number(params.license);
  return fields;
}

/** The ticket's `<ticket>` in `upload.checkTickets`'s answer; an unknown ticket (or someone else's) is reported invalid. */
function ticketJson(id: string, ticket: Ticket | undefined, now: number): Json {
  if (!ticket) return { id, done: '0', invalid: '1', eta: '0' };
  const done = ticket.settled && !ticket.invalid;
  return { id, done: done ? '1' : '0', invalid: ticket.invalid ? '1' : '0', ...(ticket.docId ? { doc_id: ticket.docId } : {}), eta: String(etaOf(ticket, now)) };
}

/** `upload.file` without a multipart body, and `upload.checkTickets`. */
export const UPLOAD_METHODS: Readonly<Record<string, Handler>> = {
  'upload.file'() {
    throw new ApiFailure(1, 'No file: upload.file takes a multipart/form-data body with a file part');
  },
  'upload.checkTickets'(call, { tickets }) {
    const ids = (call.params.tickets ?? '').split(',').map((id) => id.trim()).filter(Boolean);
    if (ids.length === 0) throw new ApiFailure(1, 'Required parameter missing: tickets');
    if (ids.length > MAX_CHECKED) throw new ApiFailure(1, `At most ${MAX_CHECKED} tickets per call`);
    const now = Date.now();
    const found = ids.map((id) => ({ id, ticket: tickets.find(id, call.token?.userId ?? '', call.app.apiKey) }));
    const list = found.map(({ id, ticket }) => ticketJson(id, ticket, now));
    const done = list.filter((ticket) => ticket.done === '1').length;
    const invalid = list.filter((ticket) => ticket.invalid === '1').length;
    const eta = Math.max(0, ...found.map(({ ticket }) => (ticket ? etaOf(ticket, now) : 0)));
    return { tickets: { count: String(ids.length), done: String(done), invalid: String(invalid), left: String(ids.length - done - invalid), eta: String(eta), ticket: list } };
  },
};

/** What a multipart body held. */
interface Received {
  fields: Record<string, string>;
  repeated: Set<string>;
  file?: { fileName: string; bytes: Buffer; md5: string; truncated: boolean };
}

/** The `cutUpload` fault: reads about half of the body (by Content-Length; 64 KB of a chunked one), then closes the connection without an answer. */
function cutUpload(req: Request): Promise<void> {
  const length = Number(req.headers['content-length']);
  const threshold = Number.isFinite(length) && length > 0 ? Math.floor(length / 2) : CUT_CHUNKED_AFTER;
  return new Promise((resolve) => {
    let read = 0;
    const cut = (): void => {
      req.socket.destroy();
      resolve();
    };
    req.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read >= threshold) cut();
    });
    req.on('end', cut);
    req.on('error', cut);
  });
}

/**
 * Reads the multipart body to its end: the text fields, and the `file` part's
 * bytes up to `keep` (beyond, read and discarded; `truncated` says so).
 * Undefined when the request was aborted; an `ApiFailure` for a body that
 * does not parse.
 */
function receive(req: Request, keep: number): Promise<Received | undefined> {
  return new Promise((resolve, reject) => {
    const received: Received = { fields: {}, repeated: new Set() };
    let parser: BusboyInstance;
    try {
      parser = new Busboy({ headers: req.headers as BusboyHeaders, limits: { fileSize: keep, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES, files: 2 } });
    } catch (error) {
      req.resume();
      reject(new ApiFailure(1, `No file: the multipart body cannot be read (${(error as Error).message})`));
      return;
    }
    let failed = false;
    let aborted = false;
    let fileDone: Promise<void> = Promise.resolve();
    const fail = (error: unknown): void => {
      if (failed || aborted) return;
      failed = true;
      req.unpipe(parser);
      req.resume();
      const answer = (): void => reject(new ApiFailure(1, `No file: the multipart body cannot be read (${(error as Error)?.message ?? 'error'})`));
      if (req.readableEnded) answer();
      else req.once('end', answer);
    };
    parser.on('field', (name, value) => {
      if (name in received.fields || received.repeated.has(name)) {
        received.repeated.add(name);
        delete received.fields[name];
      } else {
        received.fields[name] = value;
      }
    });
    parser.on('file', (name, stream: BusboyFileStream, fileName) => {
      if (name !== 'file' || received.file) {
        // a second file part, or one of another name: read and discarded
        if (name === 'file') received.repeated.add('file');
        stream.resume();
        return;
      }
      const hash = createHash('md5');
      const chunks: Buffer[] = [];
      let truncated = false;
      stream.on('data', (chunk: Buffer) => {
        if (truncated) return;
        hash.update(chunk);
        chunks.push(chunk);
      });
      stream.on('limit', () => {
        // over the limit: the bytes kept so far are of no use; the rest is read and dropped by the parser
        truncated = true;
        chunks.length = 0;
      });
      fileDone = new Promise((done) => {
        stream.on('end', () => {
          received.file = { fileName: fileName ?? 'upload', bytes: truncated ? Buffer.alloc(0) : Buffer.concat(chunks), md5: hash.digest('hex'), truncated: truncated || stream.truncated };
          done();
        });
        stream.on('error', () => done());
      });
    });
    parser.on('error', fail);
    parser.on('finish', () => {
      if (failed || aborted) return;
      void fileDone.then(() => resolve(received));
    });
    const gone = (): void => {
      if (req.readableEnded || aborted) return;
      aborted = true;
      parser.destroy();
      resolve(undefined);
    };
    req.on('error', gone);
    req.on('close', gone);
    req.pipe(parser);
  });
}

/**
 * `upload.file` as multipart/form-data: the fields, then the file part (left
 * out of the signature). Read to the end first (the file hashed and kept up
 * to the account's limits), then ipernity's checks (`admit`), then 1 (no
 * file, or an empty one) or 2 (over `maxFileBytes`, or the library's total
 * over `maxTotalBytes`). Answers a ticket, done `processingMs` later; with
 * `async=0`, waits for it and answers the document too, or 3 when the file
 * is not an image (our choice: ipernity documents no code for that).
 */
export async function receiveUpload(req: Request, res: Response, context: PhotoContext, fault: Fault | undefined): Promise<void> {
  if (fault?.cutUpload) {
    await cutUpload(req);
    return;
  }
  const { library, limits, tickets, state } = context;
  const room = limits.maxTotalBytes - library.storedBytes - tickets.pendingBytes;
  const keep = Math.max(0, Math.min(limits.maxFileBytes, room));
  let received: Received | undefined;
  try {
    received = await receive(req, keep);
  } catch (error) {
    if (error instanceof ApiFailure) {
      sendFailure(res, error);
      return;
    }
    throw error;
  }
  // the caller went away: nobody to answer
  if (!received) return;
  try {
    const call = admitRequest(state, req, 'upload.file', received.fields, received.repeated, ['file']);
    if (fault?.apiError) throw new ApiFailure(fault.apiError);
    const file = received.file;
    if (!file || (!file.truncated && file.bytes.length === 0)) throw new ApiFailure(1, 'No file, or an empty one');
    if (file.truncated) {
      throw new ApiFailure(2, keep < limits.maxFileBytes ? `Upload quota exceeded: the account may hold ${limits.maxTotalBytes} bytes` : `File too large: the limit is ${limits.maxFileBytes} bytes`);
    }
    // other uploads may have finished while this one was read
    if (library.storedBytes + tickets.pendingBytes + file.bytes.length > limits.maxTotalBytes) throw new ApiFailure(2, `Upload quota exceeded: the account may hold ${limits.maxTotalBytes} bytes`);
    const userId = call.token?.userId ?? '';
    const params = call.params;
    const ticket = tickets.create({ userId, apiKey: call.app.apiKey }, file.bytes.length, () => {
      const facts = imageFacts(file.bytes);
      if (!facts) return undefined;
      const doc = library.addUpload(userId, { bytes: file.bytes, facts, fileName: file.fileName }, docFields(params));
      const album = params.album_id ? library.album(params.album_id) : undefined;
      if (album && album.ownerId === userId) library.addToAlbum(album, doc);
      return doc.docId;
    });
    if (params.async !== '0') {
      sendOk(res, { ticket: ticket.id });
      return;
    }
    await ticket.processed;
    if (!ticket.docId) throw new ApiFailure(3, 'The file could not be processed: it is not an image ipernity reads');
    sendOk(res, { ticket: ticket.id, doc_id: ticket.docId });
  } catch (error) {
    if (error instanceof ApiFailure) sendFailure(res, error);
    else throw error;
  }
}
