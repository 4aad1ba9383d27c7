/**
 * Requests to the broker on one lane, at most one in flight: what is queued while a request is out
 * leaves with the next one, which starts as soon as that request is answered. An idle broker gets
 * each item at once; a busy one gets fewer, larger requests instead of a queue of small ones, each
 * of which would cost a round trip, kafkajs's per-request work and a fetch on the consuming side.
 */
export class CoalescingSender<T> {
  readonly #send: (items: T[]) => Promise<void>;
  readonly #maxItems: number;
  #queued: T[] = [];
  #inFlight: Promise<void> | undefined;
  #failure: { error: unknown } | undefined;

  /**
   * @param send sends one request's items; it handles (retries) what it can itself. A rejection
   *   stops the lane: nothing more is sent and drain() rejects with it.
   * @param options.maxItems items per request at most; more queued leave in several requests,
   *   one after another. Default unlimited.
   */
  constructor(send: (items: T[]) => Promise<void>, options: { maxItems?: number } = {}) {
    this.#send = send;
    this.#maxItems = options.maxItems ?? Number.POSITIVE_INFINITY;
  }

  /** Items waiting for a request. */
  get queued(): number {
    return this.#queued.length;
  }

  /** True while a request is out. */
  get busy(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Queues an item for the next request; flush() starts one. */
  add(item: T): void {
    this.#queued.push(item);
  }

  /** Starts a request with what is queued, unless one is in flight: then it leaves right after it. */
  flush(): void {
    if (this.#inFlight === undefined && this.#queued.length > 0 && this.#failure === undefined) this.#next();
  }

  /** Resolves when the request now in flight, if any, is answered (whether or not it succeeded). */
  settled(): Promise<void> {
    return this.#inFlight ?? Promise.resolve();
  }

  /**
   * Sends whatever is queued and resolves once every request is answered.
   * @throws what the send of a failed request rejected with.
   */
  async drain(): Promise<void> {
    this.flush();
    while (this.#inFlight !== undefined) await this.#inFlight;
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  #next(): void {
    const items =
      this.#queued.length <= this.#maxItems ? this.#queued : this.#queued.slice(0, this.#maxItems);
    this.#queued = items === this.#queued ? [] : this.#queued.slice(this.#maxItems);
    this.#inFlight = this.#send(items).then(
      () => this.#answered(),
      (error: unknown) => {
        this.#failure ??= { error };
        this.#answered();
      },
    );
  }

  #answered(): void {
    this.#inFlight = undefined;
    this.flush();
  }
}
