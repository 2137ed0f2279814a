// niks3-hook-queue: the double's port of niks3 hook/queue.go. The same SQLite file as the real
// niks3-hook (table upload_queue(store_path PK, created_at), WAL, busy_timeout=5000), through
// node:sqlite, so that a caller counting leftovers with `SELECT COUNT(*) FROM upload_queue` (as the
// Buildkite plugin and niks3-gitlab do) sees what it would see with the real binary.

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";

export interface Queue {
  enqueue(paths: readonly string[]): void;
  fetchBatch(batchSize: number): string[];
  remove(paths: readonly string[]): void;
  count(): number;
  close(): void;
}

/** openQueue mirrors OpenQueue: parent directories are created, errors keep Go's wording. */
export function openQueue(dbPath: string): Queue {
  try {
    mkdirSync(dirname(dbPath), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new Error(`creating database directory: ${(err as Error).message}`);
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(dbPath);
    db.exec("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;");
  } catch (err) {
    throw new Error(`opening database: ${(err as Error).message}`);
  }
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS upload_queue (
      store_path TEXT PRIMARY KEY,
      created_at DATETIME NOT NULL DEFAULT (datetime('now'))
    )`);
  } catch (err) {
    db.close();
    throw new Error(`creating table: ${(err as Error).message}`);
  }
  return {
    enqueue(paths) {
      if (paths.length === 0) return;
      const insert = db.prepare("INSERT OR IGNORE INTO upload_queue (store_path) VALUES (?)");
      db.exec("BEGIN");
      try {
        for (const path of paths) insert.run(path);
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },
    fetchBatch(batchSize) {
      const rows = db.prepare("SELECT store_path FROM upload_queue ORDER BY created_at LIMIT ?").all(batchSize) as { store_path: string }[];
      return rows.map((row) => row.store_path);
    },
    remove(paths) {
      if (paths.length === 0) return;
      db.prepare(`DELETE FROM upload_queue WHERE store_path IN (${paths.map(() => "?").join(",")})`).run(...paths);
    },
    count() {
      const row = db.prepare("SELECT COUNT(*) AS n FROM upload_queue").get() as { n: number };
      return Number(row.n);
    },
    close() {
      db.close();
    },
  };
}
