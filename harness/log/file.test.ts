import { access, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serializeEvent, sha256OfEvents } from './codec.ts';
import { eventLogContract, exampleRunEvents, readAll } from './contract.ts';
import { FileEventLog, readEventsFile, writeEventsFile } from './file.ts';

eventLogContract('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'phasebench-log-'));
  // A folder that does not exist yet: create() must make it, as for results/<run-id>/.
  const path = join(dir, 'run-1', 'events.ndjson.gz');
  const log = await FileEventLog.create(path);
  return {
    log,
    reopen: () => FileEventLog.open(path),
    cleanup: async () => {
      await log.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('FileEventLog', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phasebench-log-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes real gzip whose content is the canonical NDJSON the run hash covers', async () => {
    const path = join(dir, 'events.ndjson.gz');
    const events = exampleRunEvents('run-1', 50);
    const log = await FileEventLog.create(path);
    await log.append(events);
    await log.close();

    const bytes = await readFile(path);
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    const text = gunzipSync(bytes).toString('utf8');
    expect(text).toBe(events.map((event) => serializeEvent(event) + '\n').join(''));
  });

  it('keeps call order for appends that were not awaited one by one', async () => {
    const events = exampleRunEvents('run-1', 3000);
    const log = await FileEventLog.create(join(dir, 'events.ndjson.gz'));
    await Promise.all([log.append(events.slice(0, 2000)), log.append(events.slice(2000))]);
    expect(await readAll(log.read())).toEqual(events);
    await log.close();
  });

  it('a read racing a large append sees a whole prefix of appends, never a torn line', async () => {
    const log = await FileEventLog.create(join(dir, 'events.ndjson.gz'));
    const batches = Array.from({ length: 6 }, (_, index) => exampleRunEvents(`run-${index}`, 4000));
    const appended: (typeof batches)[number] = [];
    for (const batch of batches) {
      const reading = readAll(log.read());
      // Not awaited before reading finishes: its bytes stream to disk while the read is flushing.
      const appending = log.append(batch);
      const read = await reading;
      expect([appended.length, appended.length + batch.length]).toContain(read.length);
      expect(read).toEqual([...appended, ...batch].slice(0, read.length));
      await appending;
      appended.push(...batch);
    }
    await log.close();
  });

  it('close is idempotent and the closed file stays readable', async () => {
    const path = join(dir, 'events.ndjson.gz');
    const events = exampleRunEvents('run-1', 5);
    const log = await FileEventLog.create(path);
    await log.append(events);
    await Promise.all([log.close(), log.close()]);
    await log.close();
    expect(await readAll(log.read())).toEqual(events);
  });

  it('fails reading a corrupt line with LOG_CORRUPT naming the file and the line', async () => {
    const path = join(dir, 'events.ndjson.gz');
    const [first, third] = exampleRunEvents('run-1', 2);
    const ndjson = `${serializeEvent(first!)}\n{"v":1,"id":"run-1:1",\n${serializeEvent(third!)}\n`;
    await writeFile(path, gzipSync(ndjson));

    const log = await FileEventLog.open(path);
    const error = await readAll(log.read()).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'LOG_CORRUPT', path, line: 2 });
    expect((error as Error).message).toContain(`${path}, line 2`);
  });

  it('fails reading a truncated file with LOG_CORRUPT instead of returning a short log', async () => {
    const path = join(dir, 'events.ndjson.gz');
    await writeEventsFile(path, exampleRunEvents('run-1', 200));
    const { size } = await stat(path);
    // Cuts off exactly the 8-byte gzip trailer (CRC-32 and length), as a crash before close
    // would: every line still decodes, so only the check for a complete file can notice.
    await truncate(path, size - 8);

    await expect(readAll(readEventsFile(path))).rejects.toMatchObject({ code: 'LOG_CORRUPT', path });
  });

  it('fails reading a file that is not gzip with LOG_CORRUPT', async () => {
    const path = join(dir, 'events.ndjson');
    await writeFile(path, exampleRunEvents('run-1', 3).map(serializeEvent).join('\n'));
    await expect(readAll(readEventsFile(path))).rejects.toMatchObject({ code: 'LOG_CORRUPT', path });
  });

  it('rejects creating a log where no folder can be made with LOG_NOT_WRITABLE and the path', async () => {
    const regularFile = join(dir, 'not-a-folder');
    await writeFile(regularFile, 'x');
    const path = join(regularFile, 'run-1', 'events.ndjson.gz');

    for (const attempt of [() => FileEventLog.create(path), () => writeEventsFile(path, [])]) {
      const error = await attempt().catch((thrown: unknown) => thrown);
      expect(error).toMatchObject({ code: 'LOG_NOT_WRITABLE', path, retriable: false });
      expect((error as Error).message).toContain(path);
    }
  });

  it('rejects opening a missing log with LOG_NOT_READABLE and the path', async () => {
    const path = join(dir, 'missing.ndjson.gz');
    const error = await FileEventLog.open(path).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'LOG_NOT_READABLE', path });
    expect((error as Error).message).toContain(path);
  });

  it('rejects appending to a log opened for reading with LOG_READ_ONLY', async () => {
    const path = join(dir, 'events.ndjson.gz');
    await writeEventsFile(path, exampleRunEvents('run-1', 2));
    const log = await FileEventLog.open(path);
    await expect(log.append(exampleRunEvents('run-1', 1))).rejects.toMatchObject({ code: 'LOG_READ_ONLY' });
  });
});

describe('writeEventsFile / readEventsFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phasebench-log-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trip a log of many chunks, creating the folder, with the same hash', async () => {
    const path = join(dir, 'results', 'run-1', 'events.ndjson.gz');
    // ~40k events is several megabytes of NDJSON: many write chunks and gzip backpressure waits.
    const events = [...exampleRunEvents('run-1', 30_000), ...exampleRunEvents('run-2', 10_000)];
    await writeEventsFile(path, events);

    await access(path);
    const read = await readAll(readEventsFile(path));
    expect(read.length).toBe(events.length);
    expect(sha256OfEvents(read)).toBe(sha256OfEvents(events));
    expect(read).toEqual(events);
    expect(await readAll(readEventsFile(path, { run: 'run-2' }))).toEqual(events.slice(30_000));
  });

  it('read a multi-member gzip file (one member per chunk, as a synchronous writer makes) whole', async () => {
    const path = join(dir, 'events.ndjson.gz');
    const events = exampleRunEvents('run-1', 30);
    const members = [events.slice(0, 10), events.slice(10)].map((part) =>
      gzipSync(part.map((event) => serializeEvent(event) + '\n').join('')),
    );
    await writeFile(path, Buffer.concat(members));
    expect(await readAll(readEventsFile(path))).toEqual(events);
  });

  it('writes an empty log that reads back empty', async () => {
    const path = join(dir, 'events.ndjson.gz');
    await writeEventsFile(path, []);
    expect(await readAll(readEventsFile(path))).toEqual([]);
  });
});
