import { describe, expect, it } from 'vitest';
import { CoalescingSender } from './coalescing-sender.ts';

/** A send whose requests are answered when the test says so. */
function manualSend() {
  const requests: number[][] = [];
  const answers: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  const send = (items: number[]): Promise<void> => {
    requests.push(items);
    return new Promise((resolve, reject) => answers.push({ resolve, reject }));
  };
  return { send, requests, answers };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CoalescingSender', () => {
  it('sends at once when idle, and gathers what is queued meanwhile into the next request', async () => {
    const { send, requests, answers } = manualSend();
    const lane = new CoalescingSender(send);
    lane.add(1);
    lane.flush();
    lane.add(2);
    lane.flush();
    lane.add(3);
    lane.flush();
    expect(requests).toEqual([[1]]);
    expect(lane.queued).toBe(2);

    answers[0]!.resolve();
    await tick();
    expect(requests).toEqual([[1], [2, 3]]);
    answers[1]!.resolve();
    await lane.drain();
    expect(lane.busy).toBe(false);
  });

  it('keeps requests to maxItems, one after another', async () => {
    const { send, requests, answers } = manualSend();
    const lane = new CoalescingSender(send, { maxItems: 2 });
    for (const item of [1, 2, 3, 4, 5]) lane.add(item);
    const drained = lane.drain();
    for (let i = 0; i < 3; i++) {
      await tick();
      answers[i]!.resolve();
    }
    await drained;
    expect(requests).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('sends nothing until flushed', async () => {
    const { send, requests } = manualSend();
    const lane = new CoalescingSender(send);
    lane.add(1);
    await tick();
    expect(requests).toEqual([]);
  });

  it('stops at the first failed request, and drain rejects with it', async () => {
    const { send, requests, answers } = manualSend();
    const lane = new CoalescingSender(send);
    lane.add(1);
    lane.flush();
    lane.add(2);
    const failure = new Error('broker gone');
    answers[0]!.reject(failure);
    await expect(lane.drain()).rejects.toBe(failure);
    expect(requests).toEqual([[1]]);
  });
});
