import type { RedisClientType } from 'redis';

/**
 * Answers of reading methods, kept a short time per visitor, so that a page
 * that asks the same thing on every view does not spend the site's ipernity
 * quota. A visitor's write drops all of their answers.
 */
export interface ApiCache {
  get(visitor: string, key: string): Promise<string | undefined>;
  set(visitor: string, key: string, answer: string): Promise<void>;
  /** Forgets every answer kept for the visitor. */
  drop(visitor: string): Promise<void>;
}

/** Visitors whose answers an instance keeps in memory, at most; the oldest are forgotten first. */
const MAX_VISITORS = 10_000;
/** Answers per visitor, at most. */
const MAX_ANSWERS = 64;

/** One instance's memory: for SQLite or memory sessions, where there is one instance. */
export class MemoryApiCache implements ApiCache {
  readonly #visitors = new Map<string, Map<string, { answer: string; until: number }>>();

  constructor(readonly ttlMs: number) {}

  async get(visitor: string, key: string): Promise<string | undefined> {
    const entry = this.#visitors.get(visitor)?.get(key);
    if (!entry) return undefined;
    if (entry.until > Date.now()) return entry.answer;
    this.#visitors.get(visitor)?.delete(key);
    return undefined;
  }

  async set(visitor: string, key: string, answer: string): Promise<void> {
    let answers = this.#visitors.get(visitor);
    if (!answers) {
      if (this.#visitors.size >= MAX_VISITORS) this.#visitors.delete(this.#visitors.keys().next().value as string);
      answers = new Map();
      this.#visitors.set(visitor, answers);
    }
    if (answers.size >= MAX_ANSWERS) answers.delete(answers.keys().next().value as string);
    answers.set(key, { answer, until: Date.now() + this.ttlMs });
  }

  async drop(visitor: string): Promise<void> {
    this.#visitors.delete(visitor);
  }
}

/**
 * In Redis beside the sessions, shared by every instance: one hash per
 * visitor (`<prefix>api:<visitor>`), each answer with its own end of life,
 * and the hash itself expiring with the newest one. A write deletes the hash.
 */
export class RedisApiCache implements ApiCache {
  constructor(
    readonly redis: RedisClientType,
    readonly prefix: string,
    readonly ttlMs: number,
  ) {}

  #key(visitor: string): string {
    return `${this.prefix}api:${visitor}`;
  }

  async get(visitor: string, key: string): Promise<string | undefined> {
    const value = await this.redis.hGet(this.#key(visitor), key);
    if (!value) return undefined;
    const cut = value.indexOf(':');
    return Number(value.slice(0, cut)) > Date.now() ? value.slice(cut + 1) : undefined;
  }

  async set(visitor: string, key: string, answer: string): Promise<void> {
    await this.redis.multi().hSet(this.#key(visitor), key, `${Date.now() + this.ttlMs}:${answer}`).pExpire(this.#key(visitor), this.ttlMs).exec();
  }

  async drop(visitor: string): Promise<void> {
    await this.redis.del(this.#key(visitor));
  }
}
