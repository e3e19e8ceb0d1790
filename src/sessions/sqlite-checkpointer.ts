/**
 * The SQLite store's checkpoint thread (see `SqliteSessionStore`): a
 * connection of its own that runs passive checkpoints every `intervalMs`,
 * starts the WAL over past `restartPages`, and counts the sessions that
 * have not expired when asked (`{ id, now }`, answered `{ id, count }` or
 * `{ id, error }`): with many sessions that takes milliseconds, which on the
 * serving connection would stall every request for as long.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** What the store hands the thread. */
export interface CheckpointerData {
  file: string;
  intervalMs: number;
  restartPages: number;
}

/** A count asked of the thread. */
export interface CountQuestion {
  id: number;
  now: number;
}

/** The thread's answer to a count. */
export interface CountAnswer {
  id: number;
  count?: number;
  error?: { message: string; code?: string };
}

function run(data: CheckpointerData, port: NonNullable<typeof parentPort>): void {
  const db = new Database(data.file, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const passive = (): { log: number } => (db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0] as { log: number };
  setInterval(() => {
    if (passive().log <= data.restartPages) return;
    // a second pass copies what came in during the first, so the restart has little left to copy
    passive();
    db.pragma('wal_checkpoint(RESTART)');
  }, data.intervalMs);
  const count = db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM sessions WHERE expires > ?');
  port.on('message', ({ id, now }: CountQuestion) => {
    let answer: CountAnswer;
    try {
      answer = { id, count: count.get(now)?.n ?? 0 };
    } catch (error) {
      answer = { id, error: { message: String((error as Error | undefined)?.message), code: (error as { code?: string } | undefined)?.code } };
    }
    port.postMessage(answer);
  });
}

if (parentPort) run(workerData as CheckpointerData, parentPort);
