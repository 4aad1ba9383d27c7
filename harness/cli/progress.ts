import cliProgress from 'cli-progress';
import { formatMs } from './output.ts';

/**
 * A progress bar on stderr for long runs, shown only to a person at a terminal (never in CI logs
 * or with --json). It only listens to the run's progress callbacks.
 */
export class RunProgress {
  private readonly bar: cliProgress.SingleBar | null;
  private plan = '';

  constructor(enabled: boolean) {
    this.bar =
      enabled && process.stderr.isTTY
        ? new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: '{plan} |{bar}| virtual {virtual} of {horizon}',
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
  }

  startPlan(plan: string, index: number, total: number, horizonMs: number): void {
    this.plan = `${plan} (${index + 1}/${total})`;
    this.bar?.start(horizonMs, 0, { plan: this.plan, virtual: '0s', horizon: formatMs(horizonMs) });
  }

  update(virtualMs: number): void {
    this.bar?.update(virtualMs, { virtual: formatMs(virtualMs) });
  }

  stopPlan(): void {
    this.bar?.stop();
  }

  /** A line for the person watching, above the bar (which redraws on its next update). */
  log(text: string): void {
    if (this.bar) process.stderr.write('\r\x1b[K');
    console.log(text);
  }
}
