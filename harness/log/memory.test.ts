import { eventLogContract } from './contract.ts';
import { MemoryEventLog } from './memory.ts';

eventLogContract('memory', async () => {
  const log = new MemoryEventLog();
  return { log, cleanup: () => log.close() };
});
