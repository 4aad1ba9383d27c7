/**
 * The scheduler's priority queue: a binary min-heap ordered by (time, insertion sequence), so
 * items due at the same instant come out in the order they were scheduled. That tie-break is
 * what makes a run deterministic.
 */
export class TimeHeap<T> {
  private times: number[] = [];
  private seqs: number[] = [];
  private items: T[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  peekTime(): number | undefined {
    return this.times[0];
  }

  /** The earliest item, without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(time: number, item: T): void {
    const seq = this.nextSeq++;
    let i = this.items.length;
    this.times.push(time);
    this.seqs.push(seq);
    this.items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(time, seq, this.times[parent]!, this.seqs[parent]!)) break;
      this.move(parent, i);
      i = parent;
    }
    this.set(i, time, seq, item);
  }

  /** Removes and returns the earliest item; the caller reads its time with peekTime() first. */
  pop(): T | undefined {
    const size = this.items.length;
    if (size === 0) return undefined;
    const top = this.items[0]!;
    const lastTime = this.times.pop()!;
    const lastSeq = this.seqs.pop()!;
    const lastItem = this.items.pop()!;
    if (size > 1) {
      const n = size - 1;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        let child = left;
        if (
          right < n &&
          this.before(this.times[right]!, this.seqs[right]!, this.times[left]!, this.seqs[left]!)
        ) {
          child = right;
        }
        if (!this.before(this.times[child]!, this.seqs[child]!, lastTime, lastSeq)) break;
        this.move(child, i);
        i = child;
      }
      this.set(i, lastTime, lastSeq, lastItem);
    }
    return top;
  }

  private before(t1: number, s1: number, t2: number, s2: number): boolean {
    return t1 < t2 || (t1 === t2 && s1 < s2);
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from]!;
    this.seqs[to] = this.seqs[from]!;
    this.items[to] = this.items[from]!;
  }

  private set(i: number, time: number, seq: number, item: T): void {
    this.times[i] = time;
    this.seqs[i] = seq;
    this.items[i] = item;
  }
}
